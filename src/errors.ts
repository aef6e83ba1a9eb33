/**
 * Typed errors. Every error virtnet raises on purpose is one of these; each carries what a person needs
 * to act on it (the field and value for bad input, the command and its stderr for a failed command).
 */

/** One problem found in an input document. `path` is the element path, e.g. `network/ip[1]/dhcp/host[0]@mac`. */
export interface Problem {
  path: string;
  value: string | undefined;
  reason: string;
}

function showValue(v: string | undefined): string {
  if (v === undefined) return '(missing)';
  const shown = JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  return shown;
}

export function formatProblem(p: Problem): string {
  return `${p.path}: ${p.reason} (value ${showValue(p.value)})`;
}

/** Bad input: one or more problems, each naming the field and the value. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super(problems.map(formatProblem).join('; '));
    this.problems = problems;
  }
  static one(path: string, value: string | undefined, reason: string): ValidationError {
    return new ValidationError([{ path, value, reason }]);
  }
}

/** A command run on the host failed. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly step: string,
    readonly argv: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
  ) {
    super(
      `${step}: '${argv.join(' ')}' failed${exitCode === undefined ? '' : ` (exit ${exitCode})`}: ${stderr.trim() || '(no stderr)'}`,
    );
  }
}

/** Something requested conflicts with what exists (subnet overlap, bridge in use, name taken, …). */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** A named object does not exist. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}
