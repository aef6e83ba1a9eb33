/** `virtnetctl host-remove NETWORK MAC`. */

import type { Command } from '../command.js';
import { BUS_OPTION, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

export const hostRemoveCommand: Command = {
  name: 'host-remove',
  summary: 'Remove a host entry added with host-add',
  synopsis: 'NETWORK MAC',
  description: 'Removes, live, the host entry for MAC from the running network.',
  options: { ...BUS_OPTION },
  examples: ['host-remove default 52:54:00:aa:bb:01'],
  positionals: { min: 2, max: 2 },
  async run(ctx) {
    const [net, mac] = ctx.args as [string, string];
    await withClient(ctx, (c) => c.network(net, 'RemoveHost', 's', [mac]));
    ctx.io.stdout(`Host ${mac} removed from network ${net}\n`);
    return ExitCode.OK;
  },
};
