/**
 * Helpers shared by the dnsmasq planners (conf, hostsfile, addnhosts): address text exactly as libvirt
 * prints it (glibc `inet_ntop`), lease times, and the choice of the one IPv4 and one IPv6 address whose
 * `<dhcp>` dnsmasq serves. Pure: no I/O.
 */

import { ValidationError } from '../../errors.js';
import { formatIp, parseIp } from '../../model/ip.js';
import type { IpDef, LeaseTime, Network } from '../../model/network.js';

/**
 * An address as libvirt writes it (virSocketAddrFormat → inet_ntop): IPv4 dotted quad; IPv6 lowercase
 * with the longest run of ≥ 2 zero groups compressed, and glibc's two special forms for IPv4-compatible
 * (`::a.b.c.d`) and IPv4-mapped (`::ffff:a.b.c.d`) addresses.
 */
export function ntop(address: string, path: string): string {
  const p = parseIp(address);
  if (!p) throw ValidationError.one(path, address, 'not an IP address');
  if (p.family === 'ipv4') return formatIp('ipv4', p.value);
  const high80 = p.value >> 48n;
  const word5 = (p.value >> 32n) & 0xffffn;
  const word6 = (p.value >> 16n) & 0xffffn;
  const v4 = formatIp('ipv4', p.value & 0xffffffffn);
  if (high80 === 0n && word5 === 0n && word6 !== 0n) return `::${v4}`;
  if (high80 === 0n && word5 === 0xffffn) return `::ffff:${v4}`;
  return formatIp('ipv6', p.value);
}

/** A lease time as dnsmasq reads it: `infinite`, or the number and the first letter of the unit. */
export function leaseText(lease: LeaseTime): string {
  if (lease.expiry === 0) return 'infinite';
  return `${lease.expiry}${lease.unit[0]}`;
}

/** Whether this address has a DHCP service: at least one range or one host (libvirt's rule). */
export function hasDhcp(ip: IpDef): boolean {
  return (ip.dhcp?.ranges.length ?? 0) > 0 || (ip.dhcp?.hosts.length ?? 0) > 0;
}

export interface DhcpDefs {
  /** Index in `net.ips` of the IPv4 address that serves DHCP, if any. */
  v4?: number;
  /** Index in `net.ips` of the IPv6 address that serves DHCP, if any. */
  v6?: number;
}

/**
 * The IPv4 and the IPv6 address whose `<dhcp>` dnsmasq serves. libvirt allows one of each and refuses
 * to start a network with two (networkDnsmasqConfContents): the same ValidationError here.
 */
export function dhcpDefs(net: Network): DhcpDefs {
  const out: DhcpDefs = {};
  net.ips.forEach((ip, i) => {
    if (!hasDhcp(ip)) return;
    const key = ip.family === 'ipv4' ? 'v4' : 'v6';
    if (out[key] !== undefined) {
      throw ValidationError.one(
        `network/ip[${i}]/dhcp`,
        ip.address,
        `multiple ${ip.family === 'ipv4' ? 'IPv4' : 'IPv6'} DHCP definitions cannot be specified (already on network/ip[${out[key]}])`,
      );
    }
    out[key] = i;
  });
  return out;
}
