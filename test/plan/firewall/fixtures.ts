/**
 * Hand-built `Network` objects for the firewall planner's unit and golden tests (independent of the
 * XML parser): the shapes of libvirt's firewall test networks plus route/isolated/open/bridge ones.
 */
import type { IpDef, Network } from '../../../src/model/network.js';

export function ip4(address: string, prefix: number, opts: Partial<IpDef> = {}): IpDef {
  return { family: 'ipv4', address, prefix, ...opts };
}

export function ip6(address: string, prefix: number, opts: Partial<IpDef> = {}): IpDef {
  return { family: 'ipv6', address, prefix, ...opts };
}

export const dhcp4 = { ranges: [{ start: '192.168.122.2', end: '192.168.122.254' }], hosts: [] };
export const dhcp6 = { ranges: [{ start: '2001:db8:ca2:2:1::10', end: '2001:db8:ca2:2:1::ff' }], hosts: [] };

export function net(over: Partial<Network> & Pick<Network, 'forward'>): Network {
  return {
    name: 'default',
    uuid: '81ff0d90-c91e-6742-64da-4a736edb9a9b',
    bridge: { name: 'virbr0' },
    ips: [],
    routes: [],
    dnsmasqOptions: [],
    ignored: [],
    ...over,
  };
}

export const nat = (extra: Partial<Network['forward']> = {}) => ({
  mode: 'nat' as const,
  interfaces: [],
  ...extra,
});

/** The networks of libvirt's firewall tests, by case name. */
export const libvirtCases: Record<string, Network> = {
  'nat-default': net({ forward: nat(), ips: [ip4('192.168.122.1', 24, { dhcp: dhcp4 })] }),
  'nat-tftp': net({
    forward: nat(),
    ips: [ip4('192.168.122.1', 24, { dhcp: dhcp4, tftpRoot: '/some/dir' })],
  }),
  'nat-many-ips': net({
    forward: nat(),
    ips: [ip4('192.168.122.1', 24, { dhcp: dhcp4 }), ip4('192.168.128.1', 24), ip4('192.168.150.1', 24)],
  }),
  'nat-no-dhcp': net({ forward: nat(), ips: [ip4('192.168.122.1', 24), ip6('2001:db8:ca2:2::1', 64)] }),
  'nat-ipv6': net({
    forward: nat(),
    ips: [ip4('192.168.122.1', 24, { dhcp: dhcp4 }), ip6('2001:db8:ca2:2::1', 64, { dhcp: dhcp6 })],
  }),
  'nat-ipv6-masquerade': net({
    forward: nat({ nat: { ipv6: true } }),
    ips: [ip4('192.168.122.1', 24, { dhcp: dhcp4 }), ip6('2001:db8:ca2:2::1', 64, { dhcp: dhcp6 })],
  }),
  'route-default': net({
    forward: { mode: 'route', interfaces: [] },
    ips: [ip4('192.168.122.1', 24, { dhcp: dhcp4 })],
  }),
  'forward-dev': net({
    forward: nat({ dev: 'enp0s7', interfaces: ['enp0s7'] }),
    ips: [ip4('192.168.122.1', 24, { dhcp: dhcp4 })],
  }),
  isolated: net({
    forward: { mode: 'none', interfaces: [] },
    ips: [
      ip4('192.168.122.1', 24, { dhcp: dhcp4 }),
      ip4('192.168.128.1', 24),
      ip6('2001:db8:ca2:2::1', 64, { dhcp: dhcp6 }),
    ],
  }),
  'nat-port-range': net({
    forward: nat({ nat: { port: { start: 500, end: 1000 } } }),
    ips: [
      ip4('192.168.122.1', 24, { dhcp: dhcp4 }),
      ip4('192.168.128.1', 24),
      ip6('2001:db8:ca2:2::1', 64, { dhcp: dhcp6 }),
    ],
  }),
  'nat-port-range-ipv6': net({
    forward: nat({ nat: { ipv6: true, port: { start: 500, end: 1000 } } }),
    ips: [
      ip4('192.168.122.1', 24, { dhcp: dhcp4 }),
      ip4('192.168.128.1', 24),
      ip6('2001:db8:ca2:2::1', 64, { dhcp: dhcp6 }),
    ],
  }),
};

/** Representative networks of every mode for the golden files and the kernel-load test. */
export const goldenNetworks: Record<string, Network> = {
  'nat-default': libvirtCases['nat-default']!,
  'nat-ipv6-masquerade': libvirtCases['nat-ipv6-masquerade']!,
  'nat-forward-dev': libvirtCases['forward-dev']!,
  'nat-snat-range': net({
    name: 'snat',
    bridge: { name: 'virbr7' },
    forward: nat({
      nat: { address: { start: '203.0.113.10', end: '203.0.113.20' }, port: { start: 2000, end: 3000 } },
    }),
    ips: [ip4('10.7.0.1', 24)],
  }),
  'route-default': libvirtCases['route-default']!,
  'route-ipv6': net({
    name: 'routed6',
    bridge: { name: 'virbr6' },
    forward: { mode: 'route', dev: 'eth1', interfaces: ['eth1'] },
    ips: [ip4('10.6.0.1', 24), ip6('fd00:6::1', 64)],
  }),
  isolated: libvirtCases.isolated!,
  open: net({
    name: 'opennet',
    bridge: { name: 'virbr9' },
    forward: { mode: 'open', interfaces: [] },
    ips: [ip4('10.9.0.1', 24)],
  }),
  'odd-name': net({
    name: 'lab "west" #2.é',
    bridge: { name: 'virbr3' },
    forward: nat(),
    ips: [ip4('10.3.0.1', 24)],
  }),
};
