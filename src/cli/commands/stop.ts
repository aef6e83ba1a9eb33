/** `virtnetctl stop NAME`. */

import type { Command } from '../command.js';
import { BUS_OPTION, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

export const stopCommand: Command = {
  name: 'stop',
  summary: 'Stop (take down) an active network',
  synopsis: 'NAME',
  description: `Removes the network's dnsmasq, firewall rules and bridge; guests on it lose their network. The
definition stays (use 'undefine' to delete it). Needs root or polkit's manage-networks action.`,
  options: { ...BUS_OPTION },
  examples: ['stop default'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    await withClient(ctx, (c) => c.network(ctx.args[0]!, 'Stop'));
    ctx.io.stdout(`Network ${ctx.args[0]} stopped\n`);
    return ExitCode.OK;
  },
};
