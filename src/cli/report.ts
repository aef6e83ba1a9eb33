/** How virtnetctl prints a failure: one line per problem, each naming the element path and the value. */

import { formatProblem, ValidationError } from '../errors.js';
import type { CliIo } from './command.js';
import { UsageError } from './exit-codes.js';

export const PROG = 'virtnetctl';

export function reportError(io: CliIo, err: unknown, prefix = PROG): void {
  if (err instanceof ValidationError) {
    for (const p of err.problems) io.stderr(`${prefix}: ${formatProblem(p)}\n`);
    return;
  }
  if (err instanceof UsageError) {
    io.stderr(`${prefix}: ${err.message}\nTry '${PROG} --help'.\n`);
    return;
  }
  const msg = err instanceof Error ? err.message : String(err);
  io.stderr(`${prefix}: ${msg}\n`);
}
