/**
 * libvirt's lease status file (`/var/lib/libvirt/dnsmasq/<bridge>.status`, written by
 * libvirt_leaseshelper) → lines of dnsmasq's lease database, so leases carry over when a libvirt
 * network is imported into virtnet. Pure.
 *
 * The status file is a JSON array of objects with "ip-address", "mac-address" (IPv4) or "iaid"
 * (IPv6), optional "hostname" and "client-id", and "expiry-time" (unix seconds, 0 = infinite).
 */
import type { Problem } from '../errors.js';

export interface StatusLease {
  ip: string;
  mac?: string;
  iaid?: string;
  hostname?: string;
  clientId?: string;
  expiry: number;
}

export interface StatusFile {
  leases: StatusLease[];
  /** Entries that could not be read (path `status[N]`); they are skipped. */
  problems: Problem[];
}

const MAC = /^(?:[0-9a-f]{2}:){5}[0-9a-f]{2}$/i;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6 = /^[0-9a-f:.]+$/i;
// A token dnsmasq can read back: no whitespace.
const TOKEN = /^\S+$/;

/** Parse the file's text; an empty file (libvirt writes '' or '[]') has no leases. */
export function parseStatusFile(text: string): StatusFile {
  const out: StatusFile = { leases: [], problems: [] };
  if (text.trim() === '') return out;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    out.problems.push({
      path: 'status',
      value: text.slice(0, 40),
      reason: `not JSON (${(e as Error).message})`,
    });
    return out;
  }
  if (!Array.isArray(data)) {
    out.problems.push({ path: 'status', value: typeof data, reason: 'must be a JSON array' });
    return out;
  }
  data.forEach((entry, i) => {
    const r = readEntry(entry);
    if (typeof r === 'string')
      out.problems.push({ path: `status[${i}]`, value: JSON.stringify(entry), reason: r });
    else out.leases.push(r);
  });
  return out;
}

function str(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function readEntry(entry: unknown): StatusLease | string {
  if (typeof entry !== 'object' || entry === null) return 'an entry must be an object';
  const o = entry as Record<string, unknown>;
  const ip = str(o, 'ip-address');
  if (ip === undefined || !(IPV4.test(ip) || (ip.includes(':') && IPV6.test(ip))))
    return 'ip-address is missing or invalid';
  const expiry = o['expiry-time'];
  if (typeof expiry !== 'number' || !Number.isInteger(expiry) || expiry < 0)
    return 'expiry-time must be unix seconds';
  const lease: StatusLease = { ip, expiry };
  const mac = str(o, 'mac-address');
  const iaid = str(o, 'iaid');
  if (IPV4.test(ip)) {
    if (mac === undefined || !MAC.test(mac)) return 'mac-address is missing or invalid';
    lease.mac = mac.toLowerCase();
  } else {
    if (iaid === undefined || !/^\d+$/.test(iaid)) return 'iaid is missing or invalid';
    lease.iaid = iaid;
  }
  const hostname = str(o, 'hostname');
  if (hostname !== undefined && TOKEN.test(hostname)) lease.hostname = hostname;
  const clientId = str(o, 'client-id');
  if (clientId !== undefined && TOKEN.test(clientId)) lease.clientId = clientId;
  return lease;
}

/**
 * The leases still valid at `nowSec` as dnsmasq lease-file text (IPv4 lines only: an IPv6 lease line
 * needs dnsmasq's server DUID, which the status file does not hold; those clients renew).
 * Lines for MACs or addresses already in `existing` are left out, so carrying over twice adds nothing.
 */
export function carryOverLines(
  leases: StatusLease[],
  nowSec: number,
  existing: { mac: string; ip: string }[] = [],
): string {
  const macs = new Set(existing.map((e) => e.mac.toLowerCase()));
  const ips = new Set(existing.map((e) => e.ip));
  let s = '';
  for (const l of leases) {
    if (l.mac === undefined) continue;
    if (l.expiry !== 0 && l.expiry <= nowSec) continue;
    if (macs.has(l.mac) || ips.has(l.ip)) continue;
    s += `${l.expiry} ${l.mac} ${l.ip} ${l.hostname ?? '*'} ${l.clientId ?? '*'}\n`;
    macs.add(l.mac);
    ips.add(l.ip);
  }
  return s;
}
