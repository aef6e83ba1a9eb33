/**
 * What the units share: the record of one change they made to the host (the engine's sequencer logs
 * each once, at info, tagged with the network), and how a failed step names itself.
 */
import { CommandError, ConflictError, NotFoundError } from '../../errors.js';

export interface Change {
  message: string;
  meta?: Record<string, unknown>;
}

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Wrap a non-command failure so it names its step. */
export function stepError(step: string, e: unknown): Error {
  if (e instanceof CommandError || e instanceof ConflictError || e instanceof NotFoundError) return e;
  const err = new Error(`${step}: ${errText(e)}`);
  (err as Error & { cause?: unknown }).cause = e;
  return err;
}
