/** `virtnetctl dumpxml NAME`. */

import type { Command } from '../command.js';
import { BUS_OPTION, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

export const dumpxmlCommand: Command = {
  name: 'dumpxml',
  summary: "Print a network's XML definition",
  synopsis: 'NAME',
  description: `Prints the network's libvirt network XML as stored in virtnetd's config dir (with the defaults
it filled in).`,
  options: { ...BUS_OPTION },
  examples: ['dumpxml default > default.xml'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const [xml] = await withClient(ctx, (c) => c.network(ctx.args[0]!, 'GetXML'));
    const text = String(xml);
    ctx.io.stdout(text.endsWith('\n') ? text : `${text}\n`);
    return ExitCode.OK;
  },
};
