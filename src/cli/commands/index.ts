/**
 * The registry of virtnetctl subcommands. To add one: write `commands/<name>.ts` exporting a `Command`
 * (see ../command.ts) and add it to this list. Order here is the order in `virtnetctl --help`.
 */

import type { Command } from '../command.js';
import { autostartCommand } from './autostart.js';
import { defineCommand } from './define.js';
import { doctorCommand } from './doctor.js';
import { dumpxmlCommand } from './dumpxml.js';
import { hostAddCommand } from './host-add.js';
import { hostRemoveCommand } from './host-remove.js';
import { importLibvirtCommand, revertLibvirtCommand } from './import-libvirt.js';
import { infoCommand } from './info.js';
import { leasesCommand } from './leases.js';
import { listCommand } from './list.js';
import { monitorCommand } from './monitor.js';
import { planCommand } from './plan.js';
import { startCommand } from './start.js';
import { stopCommand } from './stop.js';
import { undefineCommand } from './undefine.js';
import { updateCommand } from './update.js';
import { validateCommand } from './validate.js';

export const commands: readonly Command[] = [
  // Client of virtnetd on the bus:
  listCommand,
  infoCommand,
  startCommand,
  stopCommand,
  defineCommand,
  undefineCommand,
  dumpxmlCommand,
  autostartCommand,
  leasesCommand,
  hostAddCommand,
  hostRemoveCommand,
  updateCommand,
  monitorCommand,
  doctorCommand,
  importLibvirtCommand,
  revertLibvirtCommand,
  // Offline:
  validateCommand,
  planCommand,
];
