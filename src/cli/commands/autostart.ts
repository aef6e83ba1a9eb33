/** `virtnetctl autostart NAME [--disable]`. */

import type { Command } from '../command.js';
import { BUS_OPTION, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

export const autostartCommand: Command = {
  name: 'autostart',
  summary: 'Start a network whenever virtnetd starts (or stop doing so)',
  synopsis: 'NAME',
  description: `Marks the network to be started by virtnetd at boot (recorded as a symlink in the config dir's
autostart/ directory, like libvirt). With --disable, removes the mark.`,
  options: {
    disable: { type: 'boolean', description: 'do not start the network automatically' },
    ...BUS_OPTION,
  },
  examples: ['autostart default', 'autostart default --disable'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const on = ctx.options.disable !== true;
    await withClient(ctx, (c) => c.network(ctx.args[0]!, 'SetAutostart', 'b', [on]));
    ctx.io.stdout(`Network ${ctx.args[0]} ${on ? 'marked as autostarted' : 'unmarked as autostarted'}\n`);
    return ExitCode.OK;
  },
};
