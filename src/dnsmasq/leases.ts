/**
 * dnsmasq's lease database (`--dhcp-leasefile`), as dnsmasq 2.x writes it:
 *
 *   <expiry> <mac> <ipv4> <hostname|*> <client-id|*>          one line per IPv4 lease
 *   duid <server-duid>                                         once, before the IPv6 leases
 *   <expiry> <iaid|Tiaid> <ipv6> <hostname|*> <client-duid|*>  one line per IPv6 lease (T = temporary)
 *
 * <expiry> is unix seconds (0 = infinite). A non-Ethernet MAC carries its hardware type as a hex
 * prefix (`06-aa:bb:…`). Pure parsing plus one small reader.
 */
import { readFile } from 'node:fs/promises';
import { type Problem, ValidationError } from '../errors.js';
import type { Lease } from '../model/values.js';

export interface DnsmasqLease extends Lease {
  family: 'ipv4' | 'ipv6';
  /** ARP hardware type when not Ethernet (the `NN-` prefix). */
  hwType?: number;
  /** IPv6: the IAID (mac is '' — dnsmasq does not record it). */
  iaid?: number;
  /** IPv6: a temporary address (IA_TA). */
  temporary?: boolean;
}

export interface LeaseFile {
  leases: DnsmasqLease[];
  /** dnsmasq's own DUID (the `duid` line), present when it serves DHCPv6. */
  serverDuid?: string;
  /** Lines that could not be read (path `leases:LINE`); they are skipped. */
  problems: Problem[];
}

const MAC = /^(?:([0-9a-f]{1,2})-)?((?:[0-9a-f]{1,2}:)*[0-9a-f]{1,2})$/i;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6 = /^[0-9a-f:.]+$/i;
const HEXCOLON = /^(?:[0-9a-f]{1,2}:)*[0-9a-f]{1,2}$/i;

function normMac(s: string): string {
  return s
    .split(':')
    .map((b) => b.padStart(2, '0').toLowerCase())
    .join(':');
}

/** Parse the whole file; malformed lines are reported in `problems` and skipped. */
export function parseLeaseFile(text: string): LeaseFile {
  const out: LeaseFile = { leases: [], problems: [] };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const reason = parseLine(line, out);
    if (reason !== undefined) out.problems.push({ path: `leases:${i + 1}`, value: line, reason });
  }
  return out;
}

/** Adds the line's lease (or duid) to `out`; returns the reason when the line is malformed. */
function parseLine(line: string, out: LeaseFile): string | undefined {
  const f = line.split(/\s+/);
  if (f[0] === 'duid') {
    if (f.length !== 2 || !HEXCOLON.test(f[1]!)) return 'duid line must be "duid HEX:HEX:…"';
    out.serverDuid = f[1]!.toLowerCase();
    return undefined;
  }
  if (f.length !== 5) return `expected 5 fields, found ${f.length}`;
  const [expiryS, idS, ip, host, client] = f as [string, string, string, string, string];
  if (!/^\d+$/.test(expiryS)) return 'expiry is not a number of seconds';
  const expiry = Number(expiryS);
  const hostname = host === '*' ? '' : host;
  const clientId = client === '*' ? undefined : client.toLowerCase();
  if (clientId !== undefined && !HEXCOLON.test(clientId)) return 'client id is not hex bytes';
  if (ip.includes(':')) {
    if (!IPV6.test(ip)) return 'not an IPv6 address';
    const m = /^(T?)(\d+)$/.exec(idS);
    if (!m) return 'IPv6 lease without a numeric IAID';
    const lease: DnsmasqLease = {
      family: 'ipv6',
      mac: '',
      ip: ip.toLowerCase(),
      hostname,
      expiry,
      iaid: Number(m[2]),
    };
    if (m[1]) lease.temporary = true;
    if (clientId !== undefined) lease.clientId = clientId;
    out.leases.push(lease);
    return undefined;
  }
  if (!IPV4.test(ip)) return 'not an IPv4 address';
  const m = MAC.exec(idS);
  if (!m) return 'not a hardware address';
  const lease: DnsmasqLease = { family: 'ipv4', mac: normMac(m[2]!), ip, hostname, expiry };
  if (m[1] !== undefined) lease.hwType = Number.parseInt(m[1], 16);
  if (clientId !== undefined) lease.clientId = clientId;
  out.leases.push(lease);
  return undefined;
}

/** The leases of a lease file's text; malformed lines are skipped. */
export function parseLeases(text: string): DnsmasqLease[] {
  return parseLeaseFile(text).leases;
}

/** Like parseLeases but a malformed line is a ValidationError naming each bad line. */
export function parseLeasesStrict(text: string): DnsmasqLease[] {
  const r = parseLeaseFile(text);
  if (r.problems.length) throw new ValidationError(r.problems);
  return r.leases;
}

/** Read and parse a lease file; a missing file means no leases. */
export async function readLeaseFile(path: string): Promise<DnsmasqLease[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return [];
    throw e;
  }
  return parseLeases(text);
}

/** Leases still valid at `nowSec` (expiry 0 = infinite). */
export function activeLeases<T extends Lease>(leases: T[], nowSec = Math.floor(Date.now() / 1000)): T[] {
  return leases.filter((l) => l.expiry === 0 || l.expiry > nowSec);
}

export type LeaseEvent = 'added' | 'updated' | 'deleted';

export interface LeaseChange {
  event: LeaseEvent;
  mac: string;
  ip: string;
  hostname: string;
}

/**
 * What changed between two snapshots, keyed by address: a new address is 'added', one whose MAC,
 * hostname or expiry changed is 'updated' (a renewal), a vanished one is 'deleted'.
 */
export function diffLeases(before: Lease[], after: Lease[]): LeaseChange[] {
  const prev = new Map(before.map((l) => [l.ip, l]));
  const next = new Map(after.map((l) => [l.ip, l]));
  const out: LeaseChange[] = [];
  for (const [ip, l] of next) {
    const p = prev.get(ip);
    const change = { mac: l.mac, ip, hostname: l.hostname };
    if (!p) out.push({ event: 'added', ...change });
    else if (
      p.mac !== l.mac ||
      p.hostname !== l.hostname ||
      p.expiry !== l.expiry ||
      p.clientId !== l.clientId
    ) {
      out.push({ event: 'updated', ...change });
    }
  }
  for (const [ip, p] of prev) {
    if (!next.has(ip)) out.push({ event: 'deleted', mac: p.mac, ip, hostname: p.hostname });
  }
  return out;
}
