/** `virtnetctl list`: every network virtnetd knows, with its state. */

import type { Command } from '../command.js';
import { BUS_OPTION, JSON_OPTION, json, table, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

export const listCommand: Command = {
  name: 'list',
  summary: 'List the defined networks and their state',
  synopsis: '',
  description: `Asks virtnetd (org.virtnet.network1 on the system bus) for every network: name, whether it is
active, whether it starts with virtnetd (autostart), its bridge and forward mode (none = isolated).`,
  options: { ...JSON_OPTION, ...BUS_OPTION },
  examples: ['list', 'list --json', 'list --bus unix:path=/run/test/bus.sock'],
  positionals: { min: 0, max: 0 },
  async run(ctx) {
    const nets = await withClient(ctx, (c) => c.list());
    if (ctx.options.json) {
      ctx.io.stdout(json(nets));
      return ExitCode.OK;
    }
    const yn = (b: boolean) => (b ? 'yes' : 'no');
    ctx.io.stdout(
      table(
        ['NAME', 'ACTIVE', 'AUTOSTART', 'BRIDGE', 'FORWARD'],
        nets.map((n) => [n.name, yn(n.active), yn(n.autostart), n.bridge, n.forwardMode]),
      ),
    );
    return ExitCode.OK;
  },
};
