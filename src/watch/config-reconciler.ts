/**
 * Turns "the file of network X changed" (config-watcher.ts) into define / redefine / undefine.
 *
 * - New valid file → the network is defined (`defined`). It is not started (autostart is a daemon
 *   start-up matter, as in libvirt).
 * - Changed file → redefined (`updated`). When the network is running it is reconciled live through
 *   `Engine.update` first (SIGHUP when only hosts changed, dnsmasq restart when its config changed,
 *   firewall swapped in one transaction); if that fails the running network and the old definition
 *   stay as they were and `failed` is emitted.
 * - Removed file → undefined (`undefined`). A RUNNING network is by default left running, as a
 *   transient network (what `virsh net-undefine` does to a running network, and what keeps the VMs on
 *   it connected — a sysadmin tidying /etc must not cut guests off). With `onRemove: 'stop'` it is
 *   stopped first (`stopped`, then `undefined`).
 * - Invalid file (bad XML, a value that does not validate, `<name>` not matching the file name) →
 *   logged and `invalid` with the reason; the definition and the running network are untouched.
 * - A file whose content equals the current definition (e.g. the daemon's own DefineNetwork write)
 *   changes nothing and emits nothing.
 *
 * Calls for one name are serialized; different names run independently.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import type { Engine } from '../engine/types.js';
import { ConflictError, ValidationError } from '../errors.js';
import { applyDefaults } from '../model/defaults.js';
import type { Network } from '../model/network.js';
import { parseNetworkXml } from '../model/parse-network.js';
import type { Logger } from '../util/log.js';
import type { ConfigWatcher } from './config-watcher.js';

export type ConfigEventKind = 'defined' | 'updated' | 'undefined' | 'stopped' | 'invalid' | 'failed';

export interface ConfigEvent {
  name: string;
  path: string;
  event: ConfigEventKind;
  /** For invalid/failed: why (one line). */
  reason?: string;
  /** For updated: the running network was reconciled live. */
  live?: boolean;
}

/** Where definitions live in the daemon (its network registry). */
export interface NetworkRegistry {
  /** The current definition of `name` and the XML text it was defined from (if known). */
  get(name: string): { network: Network; xml?: string } | undefined;
  /** Add or replace the definition (no engine work). May throw ValidationError/ConflictError. */
  define(network: Network, xml: string): Promise<void>;
  undefine(name: string): Promise<void>;
}

export type ReconcileEngine = Pick<Engine, 'isActive' | 'update' | 'stop'>;

export interface ConfigReconcilerOptions {
  registry: NetworkRegistry;
  engine: ReconcileEngine;
  /**
   * Parse a file's text. Default: parseNetworkXml + libvirt's defaults, where a missing uuid, bridge
   * name or MAC is taken from the current definition (so re-reading a file without them is no change).
   */
  parse?: (xml: string, current: Network | undefined) => Network;
  /** What removing the file of a running network does (default 'keep-running'). */
  onRemove?: 'keep-running' | 'stop';
  log?: Pick<Logger, 'info' | 'warning' | 'error'>;
}

export interface ConfigReconcilerEvents {
  event: [ConfigEvent];
}

/** Default parse: see ConfigReconcilerOptions.parse. */
export function parseWithCurrent(xml: string, current: Network | undefined): Network {
  const { network } = parseNetworkXml(xml, {
    randomUuid: () => current?.uuid ?? randomUUID(),
  });
  if (current) {
    if (!network.bridge.name && current.bridge.name)
      network.bridge = { ...network.bridge, name: current.bridge.name };
    if (!network.mac && current.mac) network.mac = current.mac;
  }
  return applyDefaults(network);
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
}

export class ConfigReconciler extends EventEmitter<ConfigReconcilerEvents> {
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly opts: ConfigReconcilerOptions;

  constructor(opts: ConfigReconcilerOptions) {
    super();
    this.opts = opts;
  }

  /** Feed a watcher's reports into this reconciler. */
  attach(watcher: ConfigWatcher): void {
    watcher.on('change', (c) => {
      void this.handle(c.name, c.path);
    });
  }

  /** Re-read the file of `name` and act on it (serialized per name). Resolves with what happened. */
  handle(name: string, path: string): Promise<ConfigEvent | undefined> {
    const prev = this.queues.get(name) ?? Promise.resolve();
    const next = prev.then(
      () => this.reconcile(name, path),
      () => this.reconcile(name, path),
    );
    this.queues.set(name, next);
    void next.finally(() => {
      if (this.queues.get(name) === next) this.queues.delete(name);
    });
    return next;
  }

  private report(ev: ConfigEvent): ConfigEvent {
    const log = this.opts.log;
    if (ev.event === 'invalid' || ev.event === 'failed')
      log?.warning(`config: ${ev.path}: ${ev.event}: ${ev.reason ?? ''}`);
    else
      log?.info(`config: network '${ev.name}' ${ev.event}${ev.live ? ' (running network reconciled)' : ''}`);
    this.emit('event', ev);
    return ev;
  }

  private async reconcile(name: string, path: string): Promise<ConfigEvent | undefined> {
    const { registry, engine } = this.opts;
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        return this.report({ name, path, event: 'invalid', reason: `cannot read: ${oneLine(e)}` });
    }
    const current = registry.get(name);

    if (text === undefined) {
      if (!current) return undefined;
      if (engine.isActive(name) && this.opts.onRemove === 'stop') {
        try {
          await engine.stop(name);
        } catch (e) {
          return this.report({
            name,
            path,
            event: 'failed',
            reason: `stopping before undefine: ${oneLine(e)}`,
          });
        }
        this.report({ name, path, event: 'stopped' });
      }
      await registry.undefine(name);
      return this.report({ name, path, event: 'undefined' });
    }

    if (current?.xml !== undefined && current.xml === text) return undefined;
    let net: Network;
    try {
      net = (this.opts.parse ?? parseWithCurrent)(text, current?.network);
    } catch (e) {
      if (e instanceof ValidationError)
        return this.report({ name, path, event: 'invalid', reason: oneLine(e) });
      throw e;
    }
    if (net.name !== name)
      return this.report({
        name,
        path,
        event: 'invalid',
        reason: `the file defines network '${net.name}': it must be named ${net.name}.xml`,
      });
    if (current && isDeepStrictEqual(current.network, net)) return undefined;

    try {
      await registry.define(net, text);
    } catch (e) {
      if (e instanceof ValidationError || e instanceof ConflictError)
        return this.report({ name, path, event: 'invalid', reason: oneLine(e) });
      return this.report({ name, path, event: 'failed', reason: oneLine(e) });
    }
    let live = false;
    if (current && engine.isActive(name)) {
      try {
        await engine.update(net);
        live = true;
      } catch (e) {
        // The running network is as before (the engine rolls back): so is its definition.
        await registry.define(current.network, current.xml ?? '').catch(() => {});
        return this.report({ name, path, event: 'failed', reason: `live update: ${oneLine(e)}` });
      }
    }
    return this.report(current ? { name, path, event: 'updated', live } : { name, path, event: 'defined' });
  }
}
