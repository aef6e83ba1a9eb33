/**
 * libvirt's defaults for a network definition, as a pure function (randomness injected):
 * - uuid: kept (the parser already generates one when <uuid> is absent, like libvirt's parser).
 * - bridge name: for networks virtnet creates the bridge for (isolated, nat, route, open) without
 *   <bridge name>, the lowest free `virbr%d` not in `usedBridgeNames` (libvirt's
 *   networkFindUnusedBridgeName / virNetworkSetBridgeName).
 * - mac: for those networks without <mac>, a random 52:54:00:xx:xx:xx (virNetworkSetBridgeMacAddr).
 * - stp on and delay 0 for those networks, unless given (libvirt's parser defaults; the formatter
 *   prints them for these modes).
 * Forward mode 'bridge' (an existing host bridge) gets none of these.
 */

import { randomBytes, randomUUID } from 'node:crypto';
import { ConflictError } from '../errors.js';
import type { Network } from './network.js';

export interface DefaultsOptions {
  /** Bridge names already taken (by other networks or existing links). */
  usedBridgeNames?: readonly string[];
  /** Random MAC generator (default: 52:54:00 + 3 random bytes). */
  randomMac?: () => string;
  /** Random UUID generator, used only if `net.uuid` is empty. */
  randomUuid?: () => string;
}

/** Modes for which virtnet (like libvirt) creates and owns the bridge. */
export function createsBridge(net: Network): boolean {
  return net.forward.mode !== 'bridge';
}

export function randomLibvirtMac(): string {
  const b = randomBytes(3);
  return `52:54:00:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

/** Lowest `virbr%d` (0..255, like libvirt's MAX_BRIDGE_ID) not in `used`. */
export function allocateBridgeName(used: readonly string[]): string {
  const taken = new Set(used);
  for (let i = 0; i < 256; i++) {
    const name = `virbr${i}`;
    if (!taken.has(name)) return name;
  }
  throw new ConflictError('no free virbr%d bridge name (all 256 are in use)');
}

/** A copy of `net` with libvirt's defaults filled in. */
export function applyDefaults(net: Network, opts: DefaultsOptions = {}): Network {
  const out: Network = structuredClone(net);
  if (!out.uuid) out.uuid = (opts.randomUuid ?? randomUUID)();
  if (!createsBridge(out)) return out;
  const bridge = { ...out.bridge };
  if (!bridge.name) bridge.name = allocateBridgeName(opts.usedBridgeNames ?? []);
  if (bridge.stp === undefined) bridge.stp = true;
  if (bridge.delay === undefined) bridge.delay = 0;
  out.bridge = bridge;
  if (!out.mac) out.mac = (opts.randomMac ?? randomLibvirtMac)();
  return out;
}
