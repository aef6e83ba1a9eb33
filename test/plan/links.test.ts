import { describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import {
  macTapName,
  planEnslave,
  planLinksDown,
  planLinksUp,
  planRelease,
  renderIpBatch,
} from '../../src/plan/links.js';

function net(over: Partial<Network> = {}): Network {
  return {
    name: 'default',
    uuid: '00000000-0000-4000-8000-000000000001',
    forward: { mode: 'nat', interfaces: [] },
    bridge: { name: 'virbr0', stp: true, delay: 0 },
    mac: '52:54:00:0a:0b:0c',
    ips: [{ family: 'ipv4', address: '192.168.122.1', prefix: 24, dhcp: { ranges: [], hosts: [] } }],
    routes: [],
    dnsmasqOptions: [],
    ignored: [],
    ...over,
  };
}

describe('planLinksUp', () => {
  it('the classic default NAT network: one batch, MAC pinned, STP with the kernel minimum delay', () => {
    const p = planLinksUp(net());
    expect(renderIpBatch(p.ops)).toBe(
      [
        'link add name virbr0 address 52:54:00:0a:0b:0c type bridge stp_state 1 forward_delay 200',
        'addr add 192.168.122.1/24 broadcast 192.168.122.255 dev virbr0',
        'link set dev virbr0 up',
        '',
      ].join('\n'),
    );
    expect(p.sysctls).toEqual([{ key: 'net.ipv4.ip_forward', value: '1' }]);
    expect(p.bridgeSysctls).toEqual([{ key: 'net.ipv6.conf.virbr0.disable_ipv6', value: '1' }]);
  });

  it('dual stack, MTU, routes, STP off with delay, the -nic tap', () => {
    const p = planLinksUp(
      net({
        name: 'v6',
        bridge: { name: 'virbr-long-name', stp: false, delay: 3 },
        mtu: 9000,
        ips: [
          { family: 'ipv4', address: '10.1.0.1', prefix: 16 },
          { family: 'ipv6', address: 'fd00:1::1', prefix: 64 },
        ],
        routes: [
          { family: 'ipv4', address: '10.20.0.0', prefix: 16, gateway: '10.1.0.2', metric: 5 },
          { family: 'ipv6', address: 'fd00:2::', prefix: 64, gateway: 'fd00:1::2' },
        ],
      }),
      { macTap: true },
    );
    expect(renderIpBatch(p.ops)).toBe(
      [
        'link add name virbr-long-name address 52:54:00:0a:0b:0c type bridge stp_state 0 forward_delay 300',
        'tuntap add dev virbr-long--nic mode tap',
        'link set dev virbr-long--nic address 52:54:00:0a:0b:0c master virbr-long-name',
        'link set dev virbr-long-name mtu 9000',
        'addr add 10.1.0.1/16 broadcast 10.1.255.255 dev virbr-long-name',
        'addr add fd00:1::1/64 dev virbr-long-name nodad',
        'link set dev virbr-long-name up',
        'route add 10.20.0.0/16 via 10.1.0.2 dev virbr-long-name metric 5',
        'route add fd00:2::/64 via fd00:1::2 dev virbr-long-name',
        '',
      ].join('\n'),
    );
    expect(p.sysctls).toEqual([
      { key: 'net.ipv4.ip_forward', value: '1' },
      { key: 'net.ipv6.conf.all.forwarding', value: '1' },
    ]);
    expect(p.bridgeSysctls.map((s) => `${s.key}=${s.value}`)).toEqual([
      'net.ipv6.conf.virbr-long-name.disable_ipv6=0',
      'net.ipv6.conf.virbr-long-name.accept_ra=0',
      'net.ipv6.conf.virbr-long-name.autoconf=0',
    ]);
  });

  it('isolated networks do not enable forwarding; ipv6=yes keeps IPv6 on the bridge', () => {
    const p = planLinksUp(net({ forward: { mode: 'none', interfaces: [] }, ipv6: true }));
    expect(p.sysctls).toEqual([]);
    expect(p.bridgeSysctls[0]).toEqual({ key: 'net.ipv6.conf.virbr0.disable_ipv6', value: '0' });
  });

  it('route and open forward; a /31 gets no broadcast', () => {
    for (const mode of ['route', 'open'] as const) {
      const p = planLinksUp(
        net({
          forward: { mode, interfaces: [] },
          ips: [{ family: 'ipv4', address: '10.0.0.0', prefix: 31 }],
        }),
      );
      expect(p.sysctls).toEqual([{ key: 'net.ipv4.ip_forward', value: '1' }]);
      expect(renderIpBatch(p.ops)).toContain('addr add 10.0.0.0/31 dev virbr0\n');
    }
  });

  it('bridge mode with a host bridge plans nothing', () => {
    const n = net({ forward: { mode: 'bridge', interfaces: [] }, bridge: { name: 'br0' }, ips: [] });
    expect(planLinksUp(n)).toEqual({ ops: [], sysctls: [], bridgeSysctls: [] });
    expect(planLinksDown(n)).toEqual([]);
  });

  it('refuses a network without a bridge name', () => {
    expect(() => planLinksUp(net({ bridge: {} }))).toThrow(/applyDefaults/);
  });
});

describe('planLinksDown', () => {
  it('deletes the tap and the bridge (addresses and routes go with it)', () => {
    expect(renderIpBatch(planLinksDown(net(), { macTap: true }))).toBe(
      'link del dev virbr0-nic\nlink del dev virbr0\n',
    );
  });
});

describe('macTapName', () => {
  it('fits IFNAMSIZ', () => {
    expect(macTapName('virbr0')).toBe('virbr0-nic');
    expect(macTapName('abcdefghijklmno')).toBe('abcdefghijk-nic');
    expect(macTapName('abcdefghijklmno').length).toBe(15);
  });
});

describe('planEnslave / planRelease', () => {
  const n = net({
    forward: { mode: 'bridge', interfaces: [] },
    bridge: { name: 'br0', enslave: 'eth0' },
    mac: undefined,
    ips: [],
  });
  const nic = {
    name: 'eth0',
    mac: '02:00:00:00:00:01',
    mtu: 1500,
    addrs: [
      { family: 'ipv4' as const, address: '192.0.2.10', prefix: 24, broadcast: '192.0.2.255' },
      { family: 'ipv6' as const, address: '2001:db8::10', prefix: 64 },
    ],
    routes: [{ family: 'ipv4' as const, dest: 'default', via: '192.0.2.1', metric: 100 }],
  };
  it('moves addresses and the default route onto the bridge in one batch', () => {
    expect(renderIpBatch(planEnslave(n, nic))).toBe(
      [
        'link add name br0 address 02:00:00:00:00:01 type bridge stp_state 0 forward_delay 0',
        'link set dev br0 mtu 1500',
        'addr del 192.0.2.10/24 dev eth0',
        'addr del 2001:db8::10/64 dev eth0',
        'link set dev eth0 master br0',
        'addr add 192.0.2.10/24 broadcast 192.0.2.255 dev br0',
        'addr add 2001:db8::10/64 dev br0 nodad',
        'link set dev br0 up',
        'route add 0.0.0.0/0 via 192.0.2.1 dev br0 metric 100',
        '',
      ].join('\n'),
    );
  });
  it('puts them back', () => {
    expect(renderIpBatch(planRelease(n, nic))).toBe(
      [
        'addr del 192.0.2.10/24 dev br0',
        'addr del 2001:db8::10/64 dev br0',
        'link set dev eth0 nomaster',
        'link set dev br0 down',
        'link del dev br0',
        'addr add 192.0.2.10/24 broadcast 192.0.2.255 dev eth0',
        'addr add 2001:db8::10/64 dev eth0 nodad',
        'link set dev eth0 up',
        'route add 0.0.0.0/0 via 192.0.2.1 dev eth0 metric 100',
        '',
      ].join('\n'),
    );
  });
});
