/**
 * virtnetctl's exit codes, and how a failure maps to one. Scripts can tell a typo (2) from a missing
 * network (3), a permission problem (4) and everything else (1: invalid input, a failed operation).
 */

import { NotFoundError, ValidationError } from '../errors.js';

export const ExitCode = {
  OK: 0,
  /** Invalid input (ValidationError) or any other failure. */
  FAILURE: 1,
  /** Bad command line: unknown command or option, wrong number of arguments. */
  USAGE: 2,
  /** The named network, file or object does not exist. */
  NOT_FOUND: 3,
  /** The caller may not do this (polkit / bus policy / file permissions). */
  ACCESS_DENIED: 4,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A command-line mistake: printed with a hint to `--help`, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** D-Bus error names (as dbus-next reports them in `err.type`) that mean "not found" / "denied". */
const NOT_FOUND_NAMES = /(^|\.)(NotFound|NoSuchNetwork|UnknownObject|ServiceUnknown|NameHasNoOwner)$/;
const DENIED_NAMES =
  /(^|\.)(AccessDenied|NotAuthorized|PermissionDenied|AuthFailed|InteractiveAuthorizationRequired)$/;

/** The exit code for an error thrown by a command. */
export function exitCodeFor(err: unknown): ExitCodeValue {
  if (err instanceof UsageError) return ExitCode.USAGE;
  if (err instanceof NotFoundError) return ExitCode.NOT_FOUND;
  if (err instanceof ValidationError) return ExitCode.FAILURE;
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; type?: unknown; name?: unknown };
    if (e.code === 'ENOENT') return ExitCode.NOT_FOUND;
    if (e.code === 'EACCES' || e.code === 'EPERM') return ExitCode.ACCESS_DENIED;
    for (const n of [e.type, e.name]) {
      if (typeof n !== 'string') continue;
      if (NOT_FOUND_NAMES.test(n)) return ExitCode.NOT_FOUND;
      if (DENIED_NAMES.test(n)) return ExitCode.ACCESS_DENIED;
    }
  }
  return ExitCode.FAILURE;
}
