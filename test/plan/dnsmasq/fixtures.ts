/** Hand-built `Network` objects for the dnsmasq planner's golden tests (no XML parser involved). */
import type { IpDef, Network } from '../../../src/model/network.js';
import type { DnsmasqPaths } from '../../../src/plan/dnsmasq.js';

export function net(over: Partial<Network> = {}): Network {
  return {
    name: 'default',
    uuid: '81ff0d90-c91e-6742-64da-4a736edb9a9b',
    forward: { mode: 'nat', interfaces: [] },
    bridge: { name: 'virbr0', stp: true, delay: 0 },
    ips: [],
    routes: [],
    dnsmasqOptions: [],
    ignored: [],
    ...over,
  };
}

export function v4(address: string, prefix: number, over: Partial<IpDef> = {}): IpDef {
  return { family: 'ipv4', address, prefix, ...over };
}

export function v6(address: string, prefix: number, over: Partial<IpDef> = {}): IpDef {
  return { family: 'ipv6', address, prefix, ...over };
}

export const paths: DnsmasqPaths = {
  hostsfile: '/var/lib/libvirt/dnsmasq/default.hostsfile',
  addnhosts: '/var/lib/libvirt/dnsmasq/default.addnhosts',
};

/** The classic NAT network of libvirt's tests: DHCP on the first IPv4, more addresses without DHCP. */
export function natNetwork(): Network {
  return net({
    forward: { mode: 'nat', dev: 'eth1', interfaces: [] },
    ips: [
      v4('192.168.122.1', 24, {
        netmask: '255.255.255.0',
        dhcp: {
          ranges: [{ start: '192.168.122.2', end: '192.168.122.254' }],
          hosts: [
            { mac: '00:16:3e:77:e2:ed', name: 'a.example.com', ip: '192.168.122.10' },
            { mac: '00:16:3e:3e:a9:1a', name: 'b.example.com', ip: '192.168.122.11' },
          ],
        },
      }),
      v4('192.168.123.1', 24),
      v6('2001:db8:ac10:fe01::1', 64),
      v6('2001:db8:ac10:fd01::1', 64),
      v4('10.24.10.1', 8),
    ],
  });
}
