import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.js';
import {
  chainOf,
  chainRules,
  type FirewallRule,
  familiesOf,
  planFirewall,
} from '../../../src/plan/firewall/rules.js';
import { dhcp4, ip4, ip6, libvirtCases, nat, net } from './fixtures.js';

const kinds = (rules: FirewallRule[]) => rules.map((r) => r.kind);

describe('planFirewall: modes', () => {
  it('open and bridge modes have no rules at all', () => {
    for (const mode of ['open', 'bridge'] as const) {
      const rs = planFirewall(
        net({ forward: { mode, interfaces: [] }, ips: [ip4('10.0.0.1', 24, { dhcp: dhcp4 })] }),
      );
      expect(rs.rules).toEqual([]);
      expect(familiesOf(rs)).toEqual([]);
    }
  });

  it('isolated: host rules, reject both ways, guest-to-guest accept, nothing per subnet, checksum', () => {
    const rs = planFirewall(libvirtCases.isolated!);
    expect(rs.rules.some((r) => 'subnet' in r)).toBe(false);
    expect(kinds(chainRules(rs, 'ipv4', 'forward-out'))).toEqual(['forward-reject-out']);
    expect(kinds(chainRules(rs, 'ipv4', 'forward-in'))).toEqual(['forward-reject-in']);
    expect(kinds(chainRules(rs, 'ipv4', 'forward-cross'))).toEqual(['forward-allow-cross']);
    expect(kinds(chainRules(rs, 'ipv6', 'forward-out'))).toEqual(['forward-reject-out']);
    expect(chainRules(rs, 'ipv4', 'nat-postrouting')).toEqual([]);
    expect(kinds(chainRules(rs, 'ipv4', 'mangle-postrouting'))).toEqual(['checksum-fill']);
  });

  it('isolated ignores forward dev', () => {
    const rs = planFirewall(
      net({ forward: { mode: 'none', dev: 'eth0', interfaces: ['eth0'] }, ips: [ip4('10.0.0.1', 24)] }),
    );
    expect(rs.rules.some((r) => 'physdev' in r)).toBe(false);
  });

  it('route: accept out from and in to each subnet, after which the catch-all rejects are evaluated', () => {
    const rs = planFirewall(libvirtCases['route-default']!);
    const out = chainRules(rs, 'ipv4', 'forward-out');
    expect(out).toEqual([
      { kind: 'forward-allow-out', family: 'ipv4', bridge: 'virbr0', subnet: '192.168.122.0/24' },
      { kind: 'forward-reject-out', family: 'ipv4', bridge: 'virbr0' },
    ]);
    expect(kinds(chainRules(rs, 'ipv4', 'forward-in'))).toEqual(['forward-allow-in', 'forward-reject-in']);
    expect(chainRules(rs, 'ipv4', 'nat-postrouting')).toEqual([]);
  });

  it('nat: exceptions first, then tcp/udp with mapped ports, then the generic masquerade', () => {
    const rs = planFirewall(libvirtCases['nat-default']!);
    const natRules = chainRules(rs, 'ipv4', 'nat-postrouting');
    expect(
      natRules.map((r) =>
        r.kind === 'dont-masquerade' ? r.destination : r.kind === 'masquerade' ? (r.proto ?? 'all') : '',
      ),
    ).toEqual(['224.0.0.0/24', '255.255.255.255/32', 'tcp', 'udp', 'all']);
    expect(natRules[2]).toMatchObject({ target: { type: 'masquerade', ports: { start: 1024, end: 65535 } } });
    expect(natRules[4]).toMatchObject({ target: { type: 'masquerade' } });
    expect(natRules[4]).not.toHaveProperty('target.ports');
    expect(kinds(chainRules(rs, 'ipv4', 'forward-in'))).toEqual([
      'forward-allow-related-in',
      'forward-reject-in',
    ]);
  });

  it('nat without ipv6=yes routes IPv6; with it, masquerades IPv6 with ff02::/16 as the only exception', () => {
    const plain = planFirewall(libvirtCases['nat-ipv6']!);
    expect(kinds(chainRules(plain, 'ipv6', 'forward-in'))).toEqual(['forward-allow-in', 'forward-reject-in']);
    expect(chainRules(plain, 'ipv6', 'nat-postrouting')).toEqual([]);
    const masq = planFirewall(libvirtCases['nat-ipv6-masquerade']!);
    const v6nat = chainRules(masq, 'ipv6', 'nat-postrouting');
    expect(v6nat[0]).toMatchObject({ kind: 'dont-masquerade', destination: 'ff02::/16' });
    expect(v6nat.filter((r) => r.kind === 'dont-masquerade')).toHaveLength(1);
  });

  it('forward dev restricts every per-subnet rule to that interface', () => {
    const rs = planFirewall(libvirtCases['forward-dev']!);
    const perSubnet = rs.rules.filter((r) => 'subnet' in r);
    expect(perSubnet.length).toBeGreaterThan(0);
    for (const r of perSubnet) expect(r).toHaveProperty('physdev', 'enp0s7');
  });

  it('host rules: DHCP and DNS always for IPv4, TFTP only with a tftp root, DHCPv6+DNS with an IPv6 address', () => {
    const rs = planFirewall(libvirtCases['nat-tftp']!);
    const ports = (family: 'ipv4' | 'ipv6', chain: 'host-input' | 'host-output') =>
      chainRules(rs, family, chain).map((r) => (r.kind === chain ? `${r.proto}/${r.port}` : ''));
    expect(ports('ipv4', 'host-input')).toEqual(['udp/69', 'udp/53', 'tcp/53', 'udp/67', 'tcp/67']);
    expect(ports('ipv4', 'host-output')).toEqual(['udp/69', 'udp/53', 'tcp/53', 'udp/68', 'tcp/68']);
    expect(ports('ipv6', 'host-input')).toEqual([]);
    const v6 = planFirewall(libvirtCases['nat-no-dhcp']!);
    expect(chainRules(v6, 'ipv6', 'host-input').map((r) => (r.kind === 'host-input' ? r.port : 0))).toEqual([
      547, 53, 53,
    ]);
  });

  it('no checksum rule without IPv4 DHCP (ranges or hosts)', () => {
    expect(planFirewall(libvirtCases['nat-no-dhcp']!).rules.some((r) => r.kind === 'checksum-fill')).toBe(
      false,
    );
    const hostsOnly = net({
      forward: nat(),
      ips: [
        ip4('10.1.0.1', 24, { dhcp: { ranges: [], hosts: [{ mac: '52:54:00:00:00:01', ip: '10.1.0.5' }] } }),
      ],
    });
    expect(planFirewall(hostsOnly).rules.some((r) => r.kind === 'checksum-fill')).toBe(true);
  });

  it("<network ipv6='yes'> without an IPv6 address: only IPv6 reject/cross rules", () => {
    const rs = planFirewall(net({ forward: nat(), ipv6: true, ips: [ip4('10.1.0.1', 24)] }));
    expect(kinds(rs.rules.filter((r) => r.family === 'ipv6'))).toEqual([
      'forward-reject-out',
      'forward-reject-in',
      'forward-allow-cross',
    ]);
  });

  it('an IPv6-only routed network still gets the IPv4 general rules (as libvirt)', () => {
    const rs = planFirewall(net({ forward: { mode: 'route', interfaces: [] }, ips: [ip6('fd00:1::1', 64)] }));
    expect(familiesOf(rs)).toEqual(['ipv4', 'ipv6']);
    expect(rs.rules.filter((r) => r.family === 'ipv4' && 'subnet' in r)).toEqual([]);
    expect(chainRules(rs, 'ipv6', 'forward-in')[0]).toMatchObject({ subnet: 'fd00:1::/64' });
  });

  it('every rule belongs to a chain', () => {
    for (const n of Object.values(libvirtCases))
      for (const r of planFirewall(n).rules) expect(chainOf(r)).toBeTruthy();
  });
});

describe('planFirewall: <nat> address and port ranges', () => {
  it('SNAT to the address range; tcp/udp keep the port range, the generic rule has none', () => {
    const rs = planFirewall(
      net({
        forward: nat({
          nat: { address: { start: '203.0.113.10', end: '203.0.113.20' }, port: { start: 2000, end: 3000 } },
        }),
        ips: [ip4('10.1.0.1', 24), ip6('fd00::1', 64)],
      }),
    );
    const v4 = chainRules(rs, 'ipv4', 'nat-postrouting').filter((r) => r.kind === 'masquerade');
    expect(v4.map((r) => (r.kind === 'masquerade' ? r.target : undefined))).toEqual([
      {
        type: 'snat',
        addressStart: '203.0.113.10',
        addressEnd: '203.0.113.20',
        ports: { start: 2000, end: 3000 },
      },
      {
        type: 'snat',
        addressStart: '203.0.113.10',
        addressEnd: '203.0.113.20',
        ports: { start: 2000, end: 3000 },
      },
      { type: 'snat', addressStart: '203.0.113.10', addressEnd: '203.0.113.20' },
    ]);
  });

  it('port 0-0 means the default 1024-65535', () => {
    const rs = planFirewall(
      net({ forward: nat({ nat: { port: { start: 0, end: 0 } } }), ips: [ip4('10.1.0.1', 24)] }),
    );
    const tcp = rs.rules.find((r) => r.kind === 'masquerade' && r.proto === 'tcp');
    expect(tcp).toMatchObject({ target: { ports: { start: 1024, end: 65535 } } });
  });

  it('refuses a port range libvirt refuses (start not below end) with a ValidationError naming the path', () => {
    for (const port of [
      { start: 1000, end: 1000 },
      { start: 2000, end: 1000 },
      { start: 10, end: 70000 },
    ]) {
      const n = net({ forward: nat({ nat: { port } }), ips: [ip4('10.1.0.1', 24)] });
      expect(() => planFirewall(n)).toThrow(ValidationError);
      try {
        planFirewall(n);
      } catch (e) {
        expect((e as ValidationError).problems[0]?.path).toBe('network/forward/nat/port');
      }
    }
  });
});

describe('planFirewall: values a rule cannot carry', () => {
  it('refuses bridge and forward dev names outside the safe shape', () => {
    for (const bad of ['virbr+', 'br*', 'br"x', "br'x", 'br;x', 'br{', '-br', 'br!', 'a'.repeat(16)]) {
      expect(() =>
        planFirewall(net({ forward: nat(), bridge: { name: bad }, ips: [ip4('10.1.0.1', 24)] })),
      ).toThrow(ValidationError);
      expect(() =>
        planFirewall(net({ forward: nat({ dev: bad, interfaces: [bad] }), ips: [ip4('10.1.0.1', 24)] })),
      ).toThrow(ValidationError);
    }
  });

  it('needs a bridge name (defaults applied) in nat/route/isolated mode', () => {
    expect(() => planFirewall(net({ forward: nat(), bridge: {}, ips: [ip4('10.1.0.1', 24)] }))).toThrow(
      /bridge/,
    );
  });
});
