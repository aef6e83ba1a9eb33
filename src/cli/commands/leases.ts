/** `virtnetctl leases NAME`. */

import { domainsByMac, FileRecordStore, hookPaths } from '../../hooks/records.js';
import type { DomainLeaseInfo } from '../bus-client.js';
import type { Command } from '../command.js';
import { BUS_OPTION, JSON_OPTION, json, table, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';
import { DEFAULT_RUN_DIR } from './plan.js';

/** The hook records' domain per MAC; empty when the records cannot be read (not root, no hooks run). */
async function leaseOwners(runDir: string, network: string): Promise<Map<string, string>> {
  try {
    return domainsByMac(await new FileRecordStore(hookPaths(runDir).records).list(), network);
  } catch {
    return new Map();
  }
}

export function formatExpiry(expiry: number): string {
  if (expiry === 0) return 'never';
  return new Date(expiry * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

export const leasesCommand: Command = {
  name: 'leases',
  summary: "Show a network's DHCP leases",
  synopsis: 'NAME',
  description: `Lists the leases dnsmasq has handed out on the network: MAC, IP, host name, the libvirt domain
that owns the MAC ('-' when unknown) and expiry time (UTC; 'never' for infinite leases). The domain comes
from the daemon (GetLeasesWithDomains, from virtnet's hook records: NICs seen at domain start or
hot-plug); a daemon without that method gets it from the records under $VIRTNET_RUN_DIR (default
/run/virtnet, readable by root only). Empty when the network is not active.`,
  options: { ...JSON_OPTION, ...BUS_OPTION },
  examples: ['leases default', 'leases default --json'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const network = ctx.args[0]!;
    const withDomains = await withClient(ctx, async (c): Promise<DomainLeaseInfo[]> => {
      const got = await c.leasesWithDomains(network);
      if (got) return got;
      const owners = await leaseOwners(ctx.io.env.VIRTNET_RUN_DIR || DEFAULT_RUN_DIR, network);
      return (await c.leases(network)).map((l) => ({ ...l, domain: owners.get(l.mac.toLowerCase()) ?? '' }));
    });
    if (ctx.options.json) {
      // `domain` only where known: the fields clients already read are unchanged.
      ctx.io.stdout(json(withDomains.map(({ domain, ...lease }) => (domain ? { ...lease, domain } : lease))));
      return ExitCode.OK;
    }
    ctx.io.stdout(
      table(
        ['MAC', 'IP', 'HOSTNAME', 'DOMAIN', 'EXPIRES'],
        withDomains.map((l) => [l.mac, l.ip, l.hostname || '-', l.domain || '-', formatExpiry(l.expiry)]),
      ),
    );
    return ExitCode.OK;
  },
};
