/**
 * The registry of virtnetctl subcommands. To add one: write `commands/<name>.ts` exporting a `Command`
 * (see ../command.ts) and add it to this list. Order here is the order in `virtnetctl --help`.
 */

import type { Command } from '../command.js';
import { planCommand } from './plan.js';
import { validateCommand } from './validate.js';

export const commands: readonly Command[] = [validateCommand, planCommand];
