/** `virtnetctl define FILE.xml`. */

import { networkNameFromPath } from '../../bus/path-encode.js';
import type { Command } from '../command.js';
import { BUS_OPTION, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

export const defineCommand: Command = {
  name: 'define',
  summary: 'Define (or redefine) a network from libvirt network XML',
  synopsis: 'FILE.xml',
  description: `Sends FILE.xml to virtnetd, which validates it, fills libvirt's defaults (uuid, bridge name, MAC)
and stores it in its config dir. Redefining a running network applies the change live. Invalid XML is
reported one problem per line (element path, reason, value). Use '-' to read standard input.`,
  options: { ...BUS_OPTION },
  examples: ['define lab.xml   # stored as <config dir>/NAME.xml, NAME from the XML', 'define - < lab.xml'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const file = ctx.args[0]!;
    const xml = await ctx.io.readFile(file === '-' ? '/dev/stdin' : file);
    const path = await withClient(ctx, (c) => c.define(xml));
    ctx.io.stdout(`Network ${networkNameFromPath(path) ?? path} defined from ${file}\n`);
    return ExitCode.OK;
  },
};
