/** `virtnetctl host-add NETWORK MAC [--ip IP] [--hostname NAME]`. */

import type { Command } from '../command.js';
import { BUS_OPTION, withClient } from '../common.js';
import { ExitCode, UsageError } from '../exit-codes.js';

export const hostAddCommand: Command = {
  name: 'host-add',
  summary: 'Add a DHCP reservation / DNS name to a running network',
  synopsis: 'NETWORK MAC',
  description: `Adds, live, a host entry for MAC to the running network: a fixed address (--ip, inside the
network's subnet) and/or a DNS name (--hostname). dnsmasq picks it up at once.`,
  options: {
    ip: { type: 'string', valueName: 'IP', description: 'the address to reserve for MAC' },
    hostname: { type: 'string', valueName: 'NAME', description: 'the DNS name of the host' },
    ...BUS_OPTION,
  },
  examples: [
    'host-add default 52:54:00:aa:bb:01 --ip 192.168.122.50 --hostname web1',
    'host-add default 52:54:00:aa:bb:02 --hostname db1',
  ],
  positionals: { min: 2, max: 2 },
  async run(ctx) {
    const [net, mac] = ctx.args as [string, string];
    const ip = typeof ctx.options.ip === 'string' ? ctx.options.ip : '';
    const hostname = typeof ctx.options.hostname === 'string' ? ctx.options.hostname : '';
    if (!ip && !hostname) throw new UsageError('host-add needs --ip, --hostname or both');
    await withClient(ctx, (c) => c.network(net, 'AddHost', 'sss', [mac, ip, hostname]));
    ctx.io.stdout(`Host ${mac} added to network ${net}\n`);
    return ExitCode.OK;
  },
};
