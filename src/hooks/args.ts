/**
 * libvirt's hook arguments and which of them virtnet acts on. Pure: no I/O.
 *
 * libvirt runs `/etc/libvirt/hooks/qemu` (and every executable in `qemu.d/`) as
 * `HOOK object operation sub-operation extra` with the domain XML on stdin, and `…/network` the same
 * way with `<hookData>` on stdin (see ../shared/libvirt-hooks/ for real captures). `object` is the
 * domain's or network's name, `extra` is `-` for every operation virtnet acts on.
 *
 * The dispatch table below is the single list of what matters; hooks/qemu and hooks/network mirror it
 * in their `case` (a test checks they agree): anything not listed exits 0 at once.
 */

import { type Problem, ValidationError } from '../errors.js';

export type HookKind = 'qemu' | 'network';

/** What virtnet does for an operation. */
export type HookAction =
  /** Hand the event to the handler (daemon or in-process). */
  | 'handle'
  /** Print stdin unchanged to stdout (libvirt reads a possibly modified domain XML back). */
  | 'passthrough'
  /** Nothing to do: exit 0. */
  | 'ignore';

const QEMU_OPS: Readonly<Record<string, HookAction>> = {
  prepare: 'handle',
  start: 'handle',
  started: 'handle',
  stopped: 'handle',
  release: 'handle',
  reconnect: 'handle',
  migrate: 'passthrough',
  restore: 'passthrough',
};

const NETWORK_OPS: Readonly<Record<string, HookAction>> = {
  start: 'handle',
  started: 'handle',
  stopped: 'handle',
  'port-created': 'handle',
  'port-deleted': 'handle',
  updated: 'handle',
};

export const DISPATCH: Readonly<Record<HookKind, Readonly<Record<string, HookAction>>>> = {
  qemu: QEMU_OPS,
  network: NETWORK_OPS,
};

/** The action for `operation` of hook `kind` (unknown operations are ignored). */
export function actionFor(kind: HookKind, operation: string): HookAction {
  const table = DISPATCH[kind];
  return Object.hasOwn(table, operation) ? table[operation]! : 'ignore';
}

/** True for the calls whose failure must stop the domain from starting (exit non-zero). */
export function blocksStart(kind: HookKind, operation: string): boolean {
  return kind === 'qemu' && (operation === 'prepare' || operation === 'start');
}

export interface HookArgs {
  kind: HookKind;
  object: string;
  operation: string;
  subOperation: string;
  extra: string;
}

/** Bounds: libvirt domain names are ≤ 255 bytes in practice; nothing here may be multi-line. */
const MAX_OBJECT = 255;
const MAX_TOKEN = 64;
const MAX_EXTRA = 4096;

const CONTROL = /[\u0000-\u001f\u007f]/;

export function isHookKind(v: string): v is HookKind {
  return v === 'qemu' || v === 'network';
}

/**
 * Validate the four arguments libvirt passes (`argv` WITHOUT the program name).
 * @throws ValidationError naming each bad argument.
 */
export function parseHookArgs(kind: HookKind, argv: readonly string[]): HookArgs {
  if (argv.length !== 4) {
    throw ValidationError.one(
      `${kind} hook arguments`,
      argv.join(' '),
      `expected 4 arguments (object operation sub-operation extra), got ${argv.length}`,
    );
  }
  const [object, operation, subOperation, extra] = argv as [string, string, string, string];
  const problems: Problem[] = [];
  if (object.length === 0) problems.push({ path: 'object', value: object, reason: 'empty' });
  else if (object.length > MAX_OBJECT)
    problems.push({ path: 'object', value: object, reason: `longer than ${MAX_OBJECT} characters` });
  else if (CONTROL.test(object))
    problems.push({ path: 'object', value: object, reason: 'contains a control character' });
  else if (object.includes('/')) problems.push({ path: 'object', value: object, reason: "contains '/'" });
  for (const [path, v] of [
    ['operation', operation],
    ['sub-operation', subOperation],
  ] as const) {
    if (!/^[a-z][a-z0-9-]*$/.test(v) || v.length > MAX_TOKEN)
      problems.push({ path, value: v, reason: 'not a libvirt hook operation name' });
  }
  if (extra.length > MAX_EXTRA || CONTROL.test(extra))
    problems.push({ path: 'extra', value: extra, reason: 'too long or contains a control character' });
  if (problems.length) throw new ValidationError(problems);
  return { kind, object, operation, subOperation, extra };
}

/**
 * Which hook an XML document belongs to, from its root element: `<domain>` (qemu) or `<hookData>`
 * (network). The daemon's HookEvent method has no hook-kind argument (its five arguments are libvirt's
 * four plus the XML), and `start`/`started`/`stopped` exist for both hooks: the document tells them
 * apart. Undefined when the root is neither.
 */
export function hookKindOfXml(xml: string): HookKind | undefined {
  // Skip BOM, XML declaration, comments, processing instructions and whitespace.
  // Only the head matters (bounded work whatever the size of the document).
  const m = /^(?:\uFEFF)?(?:\s|<\?[\s\S]*?\?>|<!--[\s\S]*?-->)*<([A-Za-z_][\w.:-]*)/.exec(
    xml.slice(0, 65536),
  );
  if (!m) return undefined;
  if (m[1] === 'domain') return 'qemu';
  if (m[1] === 'hookData') return 'network';
  return undefined;
}
