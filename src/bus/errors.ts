/**
 * The D-Bus errors of the org.virtnet.network1 API and the mapping from virtnet's typed errors to them.
 * Every error a caller sees has a name under org.virtnet.network1.Error and a one-line message a person
 * can act on. Pure.
 */
import { CommandError, ConflictError, NotFoundError, ValidationError } from '../errors.js';

export const ERROR_PREFIX = 'org.virtnet.network1.Error';

export const BusErrorName = {
  InvalidArgument: `${ERROR_PREFIX}.InvalidArgument`,
  NotFound: `${ERROR_PREFIX}.NotFound`,
  AccessDenied: `${ERROR_PREFIX}.AccessDenied`,
  Conflict: `${ERROR_PREFIX}.Conflict`,
  Failed: `${ERROR_PREFIX}.Failed`,
} as const;

export type BusErrorKind = keyof typeof BusErrorName;

/** An error to be sent back to the caller as a D-Bus error reply. */
export class BusError extends Error {
  override readonly name = 'BusError';
  constructor(
    readonly kind: BusErrorKind,
    message: string,
  ) {
    super(message);
  }
  get busName(): string {
    return BusErrorName[this.kind];
  }
}

/** Longest message text put on the bus (a 1 MB bad value must not be echoed back). */
export const MAX_ERROR_TEXT = 2000;

function clip(text: string): string {
  const oneLine = text.replace(/\s*\n\s*/g, ' ').trim();
  return oneLine.length > MAX_ERROR_TEXT ? `${oneLine.slice(0, MAX_ERROR_TEXT - 3)}...` : oneLine;
}

/** Map any thrown value to the D-Bus error name and message the caller gets. */
export function toBusError(e: unknown): { name: string; message: string } {
  if (e instanceof BusError) return { name: e.busName, message: clip(e.message) };
  if (e instanceof ValidationError) return { name: BusErrorName.InvalidArgument, message: clip(e.message) };
  if (e instanceof NotFoundError) return { name: BusErrorName.NotFound, message: clip(e.message) };
  if (e instanceof ConflictError) return { name: BusErrorName.Conflict, message: clip(e.message) };
  if (e instanceof CommandError) return { name: BusErrorName.Failed, message: clip(e.message) };
  const message = e instanceof Error ? e.message : String(e);
  return { name: BusErrorName.Failed, message: clip(`internal error: ${message}`) };
}
