/**
 * dnsmasq's lease file (`--dhcp-leasefile`): one lease per line,
 * `EXPIRY MAC IP HOSTNAME CLIENTID` (`*` for none); IPv6 leases follow a `duid …` line and have the
 * IAID in the MAC column.
 */
import { readFile } from 'node:fs/promises';
import type { Lease } from './types.js';

export function parseLeaseFile(text: string): Lease[] {
  const out: Lease[] = [];
  let v6 = false;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'duid') {
      v6 = true;
      continue;
    }
    if (f.length < 4) continue;
    const [expiry, mac, ip, hostname, clientId] = f as [string, string, string, string, string | undefined];
    if (!/^\d+$/.test(expiry)) continue;
    const lease: Lease = {
      expiry: Number(expiry),
      mac: v6 ? '' : mac,
      ip,
      hostname: hostname === '*' ? '' : hostname,
    };
    if (v6) lease.clientId = clientId && clientId !== '*' ? clientId : mac;
    else if (clientId && clientId !== '*') lease.clientId = clientId;
    out.push(lease);
  }
  return out;
}

export async function readLeaseFile(path: string): Promise<Lease[]> {
  try {
    return parseLeaseFile(await readFile(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
