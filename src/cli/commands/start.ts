/** `virtnetctl start NAME`. */

import type { Command } from '../command.js';
import { BUS_OPTION, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

export const startCommand: Command = {
  name: 'start',
  summary: 'Start (bring up) a defined network',
  synopsis: 'NAME',
  description: `Creates the network's bridge, addresses, firewall rules and dnsmasq. Needs root (or polkit's
org.virtnet.network1.manage-networks). Fails when the network is already active.`,
  options: { ...BUS_OPTION },
  examples: ['start default'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    await withClient(ctx, (c) => c.network(ctx.args[0]!, 'Start'));
    ctx.io.stdout(`Network ${ctx.args[0]} started\n`);
    return ExitCode.OK;
  },
};
