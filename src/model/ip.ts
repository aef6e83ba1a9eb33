/**
 * Pure IP address arithmetic for IPv4 and IPv6, on bigint. No I/O, no exceptions except `parseIp`
 * returning undefined for anything that is not a canonical-enough address.
 */

import type { IpFamily } from './network.js';

export interface ParsedIp {
  family: IpFamily;
  /** The address as an unsigned integer (32 or 128 bits). */
  value: bigint;
}

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function bits(family: IpFamily): number {
  return family === 'ipv4' ? 32 : 128;
}

function parseV4(s: string): bigint | undefined {
  if (!V4.test(s)) return undefined;
  let v = 0n;
  for (const part of s.split('.')) v = (v << 8n) | BigInt(Number(part));
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let head = s;
  let tailV4: bigint | undefined;
  // Embedded IPv4 in the last 32 bits (::ffff:1.2.3.4).
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    tailV4 = parseV4(s.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = head.split('::');
  if (dbl.length > 2) return undefined;
  const parseGroups = (p: string): number[] | undefined => {
    if (p === '') return [];
    const out: number[] = [];
    for (const g of p.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const left = parseGroups(dbl[0] ?? '');
  const right = dbl.length === 2 ? parseGroups(dbl[1] ?? '') : [];
  if (!left || !right) return undefined;
  let groups: number[];
  if (dbl.length === 2) {
    const missing = 8 - left.length - right.length;
    if (missing < 1) return undefined;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return undefined;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

/** Parse an IPv4 dotted quad or an IPv6 address. Undefined when it is neither. */
export function parseIp(s: string): ParsedIp | undefined {
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 'ipv4', value: v4 };
  if (s.includes(':')) {
    const v6 = parseV6(s);
    if (v6 !== undefined) return { family: 'ipv6', value: v6 };
  }
  return undefined;
}

export function isIpv4(s: string): boolean {
  return parseV4(s) !== undefined;
}

export function isIpv6(s: string): boolean {
  return s.includes(':') && parseV6(s) !== undefined;
}

/** Format an address value back to text (IPv6 in RFC 5952 compressed lowercase form). */
export function formatIp(family: IpFamily, value: bigint): string {
  if (family === 'ipv4') {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // Longest run of zero groups (length >= 2) becomes '::'.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  // Like inet_ntop (which libvirt uses): IPv4-compatible (::a.b.c.d) and IPv4-mapped
  // (::ffff:a.b.c.d) addresses end in dotted-quad form.
  if (bestStart === 0 && (bestLen === 6 || (bestLen === 5 && groups[5] === 0xffff))) {
    const v4 = formatIp('ipv4', value & 0xffffffffn);
    return bestLen === 6 ? `::${v4}` : `::ffff:${v4}`;
  }
  if (bestLen < 2) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

/** Canonical text of an address (e.g. `2001:DB8::0:1` → `2001:db8::1`); undefined when invalid. */
export function canonicalIp(s: string): string | undefined {
  const p = parseIp(s);
  return p ? formatIp(p.family, p.value) : undefined;
}

/** Mask with `prefix` leading one bits. */
export function prefixMask(family: IpFamily, prefix: number): bigint {
  const n = BigInt(bits(family));
  const all = (1n << n) - 1n;
  return (all << (n - BigInt(prefix))) & all;
}

/** Prefix length of a contiguous IPv4 netmask like 255.255.255.0; undefined when not contiguous. */
export function netmaskToPrefix(mask: string): number | undefined {
  const v = parseV4(mask);
  if (v === undefined) return undefined;
  for (let p = 0; p <= 32; p++) if (prefixMask('ipv4', p) === v) return p;
  return undefined;
}

export function prefixToNetmask(prefix: number): string {
  return formatIp('ipv4', prefixMask('ipv4', prefix));
}

/** The network address (host bits cleared). */
export function networkAddress(family: IpFamily, value: bigint, prefix: number): bigint {
  return value & prefixMask(family, prefix);
}

/** `a.b.c.0/24` style text for an address/prefix. */
export function cidr(address: string, prefix: number): string {
  const p = parseIp(address);
  if (!p) throw new Error(`not an IP address: ${address}`);
  return `${formatIp(p.family, networkAddress(p.family, p.value, prefix))}/${prefix}`;
}

/** Whether `addr` lies in `net`/`prefix` (same family). */
export function inSubnet(addr: string, net: string, prefix: number): boolean {
  const a = parseIp(addr);
  const n = parseIp(net);
  if (!a || !n || a.family !== n.family) return false;
  const m = prefixMask(a.family, prefix);
  return (a.value & m) === (n.value & m);
}

/** Whether two subnets overlap (either contains the other). */
export function subnetsOverlap(a: string, aPrefix: number, b: string, bPrefix: number): boolean {
  const pa = parseIp(a);
  const pb = parseIp(b);
  if (!pa || !pb || pa.family !== pb.family) return false;
  const p = Math.min(aPrefix, bPrefix);
  const m = prefixMask(pa.family, p);
  return (pa.value & m) === (pb.value & m);
}

/** Compare two addresses of the same family: negative, 0 or positive. */
export function compareIp(a: string, b: string): number {
  const pa = parseIp(a);
  const pb = parseIp(b);
  if (!pa || !pb) throw new Error(`not comparable: ${a} ${b}`);
  return pa.value < pb.value ? -1 : pa.value > pb.value ? 1 : 0;
}

/** Number of addresses from start to end inclusive (0 when end < start). */
export function rangeSize(start: string, end: string): bigint {
  const ps = parseIp(start);
  const pe = parseIp(end);
  if (!ps || !pe || ps.family !== pe.family || pe.value < ps.value) return 0n;
  return pe.value - ps.value + 1n;
}

/** IPv4 broadcast address of a subnet. */
export function broadcastAddress(address: string, prefix: number): string {
  const p = parseIp(address);
  if (!p) throw new Error(`not an IP address: ${address}`);
  const host = ((1n << BigInt(bits(p.family))) - 1n) ^ prefixMask(p.family, prefix);
  return formatIp(p.family, networkAddress(p.family, p.value, prefix) | host);
}
