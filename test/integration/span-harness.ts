/**
 * Shared by the span integration tests: three "host" namespaces on an underlay bridge (192.0.2.11–13
 * on eth0, the underlay's ports u1–u3 on ul0), a guest namespace behind each host (veth vnet0 ⇄ eth0),
 * an "internet" namespace behind host 1 (wan0 198.51.100.2 ⇄ up0 198.51.100.1, no route back to the
 * guests), and the one network definition every host gets.
 */
import type { Network } from '../../src/model/network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { createNetns, link, type Netns } from '../helpers/netns.js';

export const UNDERLAY = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
export const GUEST_MACS = ['52:54:00:aa:10:01', '52:54:00:aa:10:02', '52:54:00:aa:10:03'];
/** Reservations of guests 1 and 2 (guest 3 takes a dynamic address and sends its name in DHCP). */
export const RESERVED = ['10.88.0.51', '10.88.0.52'];

export function spanXml(mode: 'vxlan' | 'evpn'): string {
  return `<network xmlns:virtnet='https://virtnet.org/xmlns/network/1'>
  <name>lab</name>
  <uuid>6f3c1e2a-0000-4000-8000-0000000000ab</uuid>
  <forward mode='nat'/>
  <bridge name='vsp0' stp='off' delay='0'/>
  <mac address='52:54:00:5a:10:01'/>
  <domain name='lab'/>
  <ip address='10.88.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.88.0.100' end='10.88.0.200'/>
      <host mac='${GUEST_MACS[0]}' name='g1' ip='${RESERVED[0]}'/>
      <host mac='${GUEST_MACS[1]}' name='g2' ip='${RESERVED[1]}'/>
    </dhcp>
  </ip>
  <virtnet:span mode='${mode}' vni='10100' gateway='${UNDERLAY[0]}'>
    <virtnet:peer address='${UNDERLAY[1]}'/>
    <virtnet:peer address='${UNDERLAY[2]}'/>
  </virtnet:span>
</network>
`;
}

export function spanNetwork(mode: 'vxlan' | 'evpn'): Network {
  return parseNetworkXml(spanXml(mode), { fillDefaults: true }).network;
}

export interface SpanTopology {
  ul: Netns;
  inet: Netns;
  hosts: Netns[];
  guests: Netns[];
}

export async function spanTopology(): Promise<SpanTopology> {
  const ul = await createNetns('vsp-ul');
  const inet = await createNetns('vsp-in');
  await ul.exec(['ip', 'link', 'add', 'ul0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  await ul.up('ul0');
  const hosts: Netns[] = [];
  const guests: Netns[] = [];
  for (let i = 0; i < 3; i++) {
    const h = await createNetns(`vsp-h${i + 1}`);
    hosts.push(h);
    await link(h, 'eth0', ul, `u${i + 1}`);
    await ul.exec(['ip', 'link', 'set', `u${i + 1}`, 'master', 'ul0', 'up']);
    await h.addAddr('eth0', `${UNDERLAY[i]}/24`);
    const g = await createNetns(`vsp-g${i + 1}`);
    guests.push(g);
    await link(h, 'vnet0', g, 'eth0', { macB: GUEST_MACS[i]! });
  }
  await link(hosts[0]!, 'wan0', inet, 'up0');
  await hosts[0]!.addAddr('wan0', '198.51.100.2/24');
  await inet.addAddr('up0', '198.51.100.1/24');
  await hosts[0]!.addRoute('default', { via: '198.51.100.1' });
  return { ul, inet, hosts, guests };
}

/** Cut host i (0-based) off the underlay, or plug it back (its own links stay as they are). */
export async function underlay(t: SpanTopology, i: number, connected: boolean): Promise<void> {
  await t.ul.exec(['ip', 'link', 'set', `u${i + 1}`, ...(connected ? ['master', 'ul0'] : ['nomaster'])]);
}

export async function ping(from: Netns, ip: string, count = 1): Promise<boolean> {
  const r = await from.exec(['busybox', 'ping', '-c', String(count), '-W', '2', ip], { allowFail: true });
  return r.exitCode === 0;
}

/** `nslookup -type=a NAME` against the gateway's dnsmasq. */
export async function resolveName(from: Netns, name: string): Promise<string> {
  const r = await from.exec(['busybox', 'nslookup', '-type=a', name, '10.88.0.1'], { allowFail: true });
  return r.stdout;
}
