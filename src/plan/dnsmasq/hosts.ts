/**
 * The two host files dnsmasq re-reads on SIGHUP, byte for byte as libvirt writes them
 * (src/util/virdnsmasq.c, hostsfileAdd / addnhostsAdd / addnhostsWrite):
 *
 * - the DHCP hostsfile (`dhcp-hostsfile=`): one reservation per line, first the hosts of the IPv4
 *   address that serves DHCP, then those of the IPv6 one, each in XML order. IPv4: `mac,ip,name`,
 *   `name,ip` or `mac,ip`; IPv6: `id:DUID,name,[ip]`, `name,[ip]` or `id:DUID,[ip]`; then `,lease`
 *   when the host has a `<lease>`. Hosts without an address are left out (libvirt does the same).
 * - the addn-hosts file (`addn-hosts=`): the `<dns><host>` names, one line per address in order of
 *   first appearance, `ip<TAB>name<TAB>name<TAB>…<TAB>\n` (libvirt ends every name with a tab).
 *
 * Live entries (`extraHosts`, added with Engine.addHost and not part of the XML) are virtnet's own; they
 * are appended in the order given, so a caller that keeps them in a stable order gets a stable file:
 * - an entry WITH `mac` goes into the hostsfile (dnsmasq's dhcp-host forms). With `ip` it is a
 *   reservation, after the XML hosts of its address family, as `mac,ip[,name]` (IPv4) or
 *   `mac,[ip][,name]` (IPv6). Without `ip` it names the guest (`mac,name`: dynamic address, the name
 *   registered in DNS when it leases) — what a VM without virtnet metadata gets, by its domain name —
 *   and goes after the IPv4 hosts (the line is not family-specific);
 * - an entry WITHOUT `mac` is a DNS name (needs `ip` and `hostname`). It goes into the addn-hosts
 *   file, merged into the line of its address like libvirt merges `<dns><host>` names.
 * Every field of a live entry is validated here (they do not come through the XML parser): a bad one
 * raises a ValidationError naming `extraHosts[i]`.
 */

import { ConflictError, ValidationError } from '../../errors.js';
import { parseIp } from '../../model/ip.js';
import type { DhcpHost, IpDef, Network } from '../../model/network.js';
import { validateHostname, validateMac } from '../../model/validators.js';
import type { HostEntry } from '../../model/values.js';
import { dhcpDefs, leaseText, ntop } from './common.js';

/** One hostsfile line (without the newline) for an XML `<host>`, or undefined when it has no address. */
function dhcpHostLine(ip: IpDef, host: DhcpHost, path: string): string | undefined {
  if (host.ip === undefined) return undefined;
  const addr = ntop(host.ip, `${path}@ip`);
  let line: string;
  if (ip.family === 'ipv6') {
    if (host.name !== undefined && host.id !== undefined) line = `id:${host.id},${host.name}`;
    else if (host.name !== undefined) line = host.name;
    else if (host.id !== undefined) line = `id:${host.id}`;
    else throw ValidationError.one(path, undefined, 'an IPv6 DHCP host needs an id or a name');
    line += `,[${addr}]`;
  } else if (host.name !== undefined && host.mac !== undefined) {
    line = `${host.mac},${addr},${host.name}`;
  } else if (host.name !== undefined) {
    line = `${host.name},${addr}`;
  } else if (host.mac !== undefined) {
    line = `${host.mac},${addr}`;
  } else {
    throw ValidationError.one(path, undefined, 'an IPv4 DHCP host needs a mac or a name');
  }
  if (host.lease) line += `,${leaseText(host.lease)}`;
  return line;
}

interface CheckedExtra {
  /** Absent for a name-only entry (`mac,name`). */
  family?: 'ipv4' | 'ipv6';
  ip?: string;
  mac?: string;
  hostname?: string;
}

/** Validate one live entry (errors name `path`.field); every value ends up in a dnsmasq file. */
function checkExtra(h: HostEntry, path: string): CheckedExtra {
  const out: CheckedExtra = {};
  if (h.ip !== undefined) {
    const parsed = parseIp(h.ip);
    if (!parsed) throw ValidationError.one(`${path}.ip`, h.ip, 'not an IP address');
    out.family = parsed.family;
    out.ip = ntop(h.ip, `${path}.ip`);
  }
  if (h.mac !== undefined) {
    const bad = validateMac(h.mac, { unicast: true });
    if (bad) throw ValidationError.one(`${path}.mac`, h.mac, bad);
    out.mac = h.mac.toLowerCase();
  }
  if (h.hostname !== undefined) {
    const bad = validateHostname(h.hostname);
    if (bad) throw ValidationError.one(`${path}.hostname`, h.hostname, bad);
    out.hostname = h.hostname;
  }
  if (out.mac === undefined) {
    if (out.hostname === undefined)
      throw ValidationError.one(
        path,
        undefined,
        'a live host needs a mac (DHCP host) or a hostname with an ip (DNS name)',
      );
    if (out.ip === undefined)
      throw ValidationError.one(`${path}.ip`, undefined, 'a DNS name without a mac needs an address');
  } else if (out.ip === undefined && out.hostname === undefined) {
    throw ValidationError.one(
      path,
      h.mac,
      'a live host with a mac needs an ip (reservation) or a hostname (name for its lease)',
    );
  }
  return out;
}

/**
 * Check one live entry as the engine takes it (ValidationError naming `host.<field>` and the value),
 * and the list with it added. A MAC that already has an entry, or an address another entry reserves,
 * is a ConflictError (as libvirt's net-update refuses a second host of one MAC): change an entry by
 * removing it first. Returns the normalized entry and the new list. Pure: the engine
 * and the test doubles of it both use this, so a double accepts exactly what the engine accepts.
 */
export function withLiveHost(
  network: string,
  current: readonly HostEntry[],
  host: HostEntry,
): { entry: HostEntry; hosts: HostEntry[] } {
  const key = checkExtra(host, 'host').mac;
  if (key && current.some((h) => h.mac?.toLowerCase() === key))
    throw new ConflictError(`network ${network}: ${key} already has a host entry (remove it first)`);
  if (host.ip && current.some((h) => h.ip === host.ip))
    throw new ConflictError(`network ${network}: ${host.ip} is already reserved`);
  const entry: HostEntry = { ...host, ...(key ? { mac: key } : {}) };
  return { entry, hosts: [...current, entry] };
}

function extraDhcpLine(e: CheckedExtra): string {
  if (e.ip === undefined) return `${e.mac},${e.hostname}`;
  const addr = e.family === 'ipv6' ? `[${e.ip}]` : e.ip;
  return `${e.mac},${addr}${e.hostname !== undefined ? `,${e.hostname}` : ''}`;
}

/**
 * The dhcp-hostsfile content ('' when there are no reservations, like libvirt's empty file).
 * Throws ValidationError for a network libvirt would refuse to start (two DHCP definitions of one
 * family) or a bad live entry.
 */
export function renderHostsfile(net: Network, extraHosts: HostEntry[] = []): string {
  const defs = dhcpDefs(net);
  const extras = extraHosts
    .map((h, i) => checkExtra(h, `extraHosts[${i}]`))
    .filter((e) => e.mac !== undefined);
  const lines: string[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const index = family === 'ipv4' ? defs.v4 : defs.v6;
    if (index !== undefined) {
      const ip = net.ips[index]!;
      ip.dhcp?.hosts.forEach((host, h) => {
        const line = dhcpHostLine(ip, host, `network/ip[${index}]/dhcp/host[${h}]`);
        if (line !== undefined) lines.push(line);
      });
    }
    for (const e of extras) if ((e.family ?? 'ipv4') === family) lines.push(extraDhcpLine(e));
  }
  return lines.map((l) => `${l}\n`).join('');
}

/**
 * The addn-hosts content: `<dns><host>` names (whatever `<dns enable>` says — libvirt writes them
 * either way), then live DNS-only entries, grouped by address in order of first appearance.
 */
export function renderAddnhosts(net: Network, extraHosts: HostEntry[] = []): string {
  const byIp = new Map<string, string[]>();
  const add = (ip: string, name: string): void => {
    const names = byIp.get(ip);
    if (names) names.push(name);
    else byIp.set(ip, [name]);
  };
  net.dns?.hosts.forEach((host, i) => {
    const ip = ntop(host.ip, `network/dns/host[${i}]@ip`);
    for (const name of host.hostnames) add(ip, name);
  });
  for (const e of extraHosts.map((h, i) => checkExtra(h, `extraHosts[${i}]`))) {
    if (e.mac === undefined && e.hostname !== undefined && e.ip !== undefined) add(e.ip, e.hostname);
  }
  let out = '';
  for (const [ip, names] of byIp) out += `${ip}\t${names.map((n) => `${n}\t`).join('')}\n`;
  return out;
}
