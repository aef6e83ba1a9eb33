/** `virtnetctl import-libvirt NAME [--connect URI]` and `revert-libvirt NAME [--connect URI]`. */

import { MANAGER_INTERFACE } from '../../bus/api.js';
import { MANAGER_PATH } from '../../bus/path-encode.js';
import type { Command } from '../command.js';
import { BUS_OPTION, withClient } from '../common.js';
import { ExitCode } from '../exit-codes.js';

const CONNECT = {
  connect: {
    type: 'string',
    valueName: 'URI',
    description: "libvirt's URI (default: the one virtnetd publishes to, --libvirt; normally qemu:///system)",
  },
} as const;

export const importLibvirtCommand: Command = {
  name: 'import-libvirt',
  summary: "Move libvirt's network NAME to virtnet, running VMs kept",
  synopsis: 'NAME',
  description: `virtnetd takes libvirt's network NAME (its XML unchanged; what virtnet cannot serve is refused
before anything changes), stops libvirt's copy, defines and starts it in virtnet (autostart as libvirt
had it, DHCP leases carried over), puts the taps of running VMs on virtnet's bridge (no restart), and
replaces libvirt's definition by a bridge-mode network of the same name and UUID on that bridge.
libvirt's original is kept for revert-libvirt. Safe to run twice, and to run again after an
interruption. Needs root (or polkit's org.virtnet.network1.manage-networks).`,
  options: { ...CONNECT, ...BUS_OPTION },
  examples: ['import-libvirt default', 'import-libvirt lab --connect qemu:///system'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const name = ctx.args[0]!;
    const uri = typeof ctx.options.connect === 'string' ? ctx.options.connect : '';
    await withClient(ctx, (c) => c.call(MANAGER_PATH, MANAGER_INTERFACE, 'ImportLibvirt', 'ss', [name, uri]));
    ctx.io.stdout(
      `Network ${name} imported from libvirt; libvirt's ${name} is now virtnet's bridge-mode copy\n`,
    );
    return ExitCode.OK;
  },
};

export const revertLibvirtCommand: Command = {
  name: 'revert-libvirt',
  summary: 'Give network NAME back to libvirt (undo import-libvirt)',
  synopsis: 'NAME',
  description: `virtnet stops and undefines NAME; libvirt gets its original definition back byte for byte (its
autostart and state as before the import) and the taps of running VMs go back onto libvirt's bridge.
Fails (exit 3) when NAME was not imported. Needs root (or polkit's org.virtnet.network1.manage-networks).`,
  options: { ...CONNECT, ...BUS_OPTION },
  examples: ['revert-libvirt default'],
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const name = ctx.args[0]!;
    const uri = typeof ctx.options.connect === 'string' ? ctx.options.connect : '';
    await withClient(ctx, (c) => c.call(MANAGER_PATH, MANAGER_INTERFACE, 'RevertLibvirt', 'ss', [name, uri]));
    ctx.io.stdout(`Network ${name} is libvirt's again\n`);
    return ExitCode.OK;
  },
};
