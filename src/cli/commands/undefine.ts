/** `virtnetctl undefine NAME`. */

import type { Command } from '../command.js';
import { BUS_OPTION, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

export const undefineCommand: Command = {
  name: 'undefine',
  summary: "Delete a network's definition",
  synopsis: 'NAME',
  description: `Removes the network's XML file and autostart link from virtnetd's config dir. An active network
must be stopped first.`,
  options: { ...BUS_OPTION },
  examples: ['undefine lab'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    await withClient(ctx, (c) => c.network(ctx.args[0]!, 'Undefine'));
    ctx.io.stdout(`Network ${ctx.args[0]} has been undefined\n`);
    return ExitCode.OK;
  },
};
