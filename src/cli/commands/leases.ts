/** `virtnetctl leases NAME`. */

import type { Command } from '../command.js';
import { BUS_OPTION, JSON_OPTION, json, table, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

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
  description: `Lists the leases dnsmasq has handed out on the network: MAC, IP, host name and expiry time
(UTC; 'never' for infinite leases). Empty when the network is not active.`,
  options: { ...JSON_OPTION, ...BUS_OPTION },
  examples: ['leases default', 'leases default --json'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const leases = await withClient(ctx, (c) => c.leases(ctx.args[0]!));
    if (ctx.options.json) {
      ctx.io.stdout(json(leases));
      return ExitCode.OK;
    }
    ctx.io.stdout(
      table(
        ['MAC', 'IP', 'HOSTNAME', 'EXPIRES'],
        leases.map((l) => [l.mac, l.ip, l.hostname || '-', formatExpiry(l.expiry)]),
      ),
    );
    return ExitCode.OK;
  },
};
