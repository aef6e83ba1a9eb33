/**
 * Preconditions for tests that need root, namespaces or system tools. Outside CI a missing
 * precondition skips with a visible reason; under CI=true it is a failure.
 */
import { execFileSync } from 'node:child_process';
import { inCI } from './shared.js';

function which(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v "$0"`, tool], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Undefined when we are root and every tool is on PATH; otherwise the reason. Use with
 * `describe.skipIf(reason)` and print the reason. Under CI=true throws instead of skipping.
 */
export function missingPrereqs(
  tools: string[],
  opts: { root?: boolean } = { root: true },
): string | undefined {
  const problems: string[] = [];
  if ((opts.root ?? true) && process.getuid?.() !== 0) problems.push('not running as root');
  const missing = tools.filter((t) => !which(t));
  if (missing.length) problems.push(`missing tools: ${missing.join(', ')} (run packaging/install-deps.sh)`);
  if (!problems.length) return undefined;
  const reason = problems.join('; ');
  if (inCI) throw new Error(`CI=true and prerequisites missing: ${reason}`);
  console.warn(`SKIP: ${reason}`);
  return reason;
}
