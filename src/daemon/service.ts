/**
 * The org.virtnet.network1 service: the Manager object and one Network object per defined network,
 * on top of the config store (source of truth for definitions and autostart) and the engine (what is
 * up on the host). Every mutating operation runs through one queue, so two calls never interleave;
 * read-only calls and property reads are answered from memory without waiting.
 *
 * Events: Manager.NetworkEvent (defined, undefined, started, stopped, updated), ObjectManager
 * InterfacesAdded/Removed (via BusObjects), PropertiesChanged for every property whose value changed
 * (computed by comparing a snapshot after each operation and each engine event, so nothing is sent
 * twice and nothing is missed), and the engine's lease and port events as Network signals.
 *
 * Choices:
 * - Start of an active network and Stop of an inactive one are Conflict errors (like libvirt).
 * - Undefine of an active network is a Conflict ("stop it first"): guests never lose their network
 *   by surprise. A config file removed behind our back while the network runs (Reload) makes it
 *   transient: it stays up and its object stays until Stop — unless the daemon runs with
 *   `--on-file-removed stop`, which stops and undefines it.
 * - DefineNetwork of an existing, running network reconciles it live (engine.update) and emits
 *   'updated', as editing its file does.
 * - Network.Update (virsh net-update) changes one section of the stored definition
 *   (model/update-network.ts) and then goes the DefineNetwork way.
 * - AddHost/RemoveHost are live changes on a running network (the engine's extra hosts); on an inactive
 *   network they are a Conflict.
 */

import {
  MANAGER_INTERFACE,
  type MethodSpec,
  managerInterface,
  NETWORK_INTERFACE,
  type NetworkEventKind,
  networkInterface,
} from '../bus/api.js';
import type { MessageBus } from '../bus/dbus.js';
import { BusErrorName } from '../bus/errors.js';
import { MANAGER_PATH, NETWORK_PATH_PREFIX, networkPath } from '../bus/path-encode.js';
import type { NetworkCodec } from '../config/network-codec.js';
import type { ConfigStore } from '../config/store.js';
import { spanSummary } from '../engine/span.js';
import type { Engine, EngineEvents } from '../engine/types.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { DaemonHooks, HookServiceView } from '../hooks/bus-adapter.js';
import type { HookEvents } from '../hooks/context.js';
import type { MigrateOps } from '../libvirt/migrate.js';
import type { Network } from '../model/network.js';
import { type UpdateCommand, type UpdateSection, updateNetwork } from '../model/update-network.js';
import { checkMac, checkNetworkName } from '../model/validators.js';
import type { Logger } from '../util/log.js';
import { withTimeout } from '../util/timeout.js';
import { BusObjects, type CallContext, type InterfaceImpl } from './bus-objects.js';
import { checkDefineXml, checkHookArgs, checkHostArgs } from './call-args.js';

export interface ServiceOptions {
  bus: MessageBus;
  engine: Engine;
  store: ConfigStore;
  codec: NetworkCodec;
  authorize: (ctx: CallContext, action: string, method: MethodSpec) => Promise<void>;
  version: string;
  log: Logger;
  /** libvirt hook events (Manager.HookEvent); without it HookEvent only checks its arguments. */
  hooks?: DaemonHooks;
  /**
   * A running network whose config file was deleted (seen by the watcher, Reload or SIGHUP):
   * 'keep-running' (default) leaves it up as a transient network until stopped; 'stop' stops it and
   * undefines it.
   */
  onFileRemoved?: 'keep-running' | 'stop';
  /** Told when a changing call (start, stop, define, hook event…) is done (main.ts: IdleGc.poke). */
  onChangeDone?: () => void;
  /** Publishing into libvirt (src/libvirt/publisher.ts); without it the Libvirt property is 'off'. */
  publish?: PublishHooks;
  /** ImportLibvirt / RevertLibvirt (src/libvirt/migrate.ts); without it they are Failed. */
  migrate?: MigrateHooks;
}

export interface MigrateHooks {
  import(name: string, uri: string): Promise<string>;
  revert(name: string, uri: string): Promise<void>;
}

/** What the service needs of the libvirt publisher. */
export interface PublishHooks {
  /** The Libvirt property of a network. */
  status(name: string): string;
  /** Bring libvirt in line with the networks now (never rejects for libvirt's faults). */
  sync(): Promise<void>;
  /** A hook call arrived: libvirt is alive. */
  libvirtSeen(): void;
}

/** How long a Start/Stop/Define/Undefine waits for libvirt to follow before it returns anyway. */
const PUBLISH_WAIT_MS = 30_000;

interface Entry {
  net: Network;
  /** Has a file in the config dir. */
  persistent: boolean;
  autostart: boolean;
  path: string;
  /** Property values last announced. */
  shown: Record<string, unknown>;
}

type PropValues = Record<string, string | boolean>;

function normUuid(u: string): string {
  return u.replace(/-/g, '').toLowerCase();
}

export class VirtnetService {
  readonly objects: BusObjects;
  private readonly entries = new Map<string, Entry>();
  /** The text of each network's file as last read or written: unchanged files are not re-parsed. */
  private readonly fileText = new Map<string, string>();
  private queue: Promise<unknown> = Promise.resolve();
  /** The last queued per-network call of each network, and every per-network call not yet done. */
  private readonly networkTails = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();
  private markReady!: () => void;
  private markFailed!: (e: unknown) => void;
  private readonly ready: Promise<void>;
  private readonly listeners: { [K in keyof EngineEvents]?: (e: EngineEvents[K]) => void } = {};

  constructor(private readonly o: ServiceOptions) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.markFailed = reject;
    });
    this.ready.catch(() => {});
    this.objects = new BusObjects(o.bus, {
      objectManagerPath: MANAGER_PATH,
      authorize: o.authorize,
      ready: this.ready,
      notFound: {
        prefix: `${NETWORK_PATH_PREFIX}/`,
        errorName: BusErrorName.NotFound,
        message: (p) => `no network at ${p} (it was undefined, or never existed); see ListNetworks`,
      },
      onInternalError: (e, where) => o.log.error(`internal error in ${where}`, { err: e }),
      ...(o.onChangeDone ? { onChangeDone: o.onChangeDone } : {}),
    });
    this.objects.add(MANAGER_PATH, [this.managerImpl()]);
  }

  // ---------------------------------------------------------------- startup and shutdown

  /**
   * Load the config dir, adopt what is already up, start autostart networks, then answer calls.
   * Networks that fail to load or start are logged; the daemon still comes up.
   */
  async start(): Promise<void> {
    try {
      await this.o.store.ensure();
      await this.loadAll(false);
      this.subscribe();
      const persistent = [...this.entries.values()].map((e) => e.net);
      await this.o.engine.adopt(persistent);
      for (const info of this.o.engine.list()) {
        if (!this.entries.has(info.name)) {
          this.o.log.warning(`network '${info.name}' is up but has no definition; leaving it alone`, {
            network: info.name,
          });
        }
      }
      // Autostart networks side by side (the engine admits concurrent starts and refuses conflicts).
      const autostart = [...this.entries.values()]
        .filter((e) => e.autostart && !this.o.engine.isActive(e.net.name))
        .sort((a, b) => a.net.name.localeCompare(b.net.name));
      await Promise.all(
        autostart.map(async (e) => {
          try {
            await this.o.engine.start(e.net);
            // The engine logs the start (once); this only says why.
            this.o.log.debug(`autostarted network '${e.net.name}'`, { network: e.net.name });
          } catch (err) {
            this.o.log.error(`autostart of network '${e.net.name}' failed: ${(err as Error).message}`, {
              network: e.net.name,
            });
          }
        }),
      );
      for (const name of this.entries.keys()) this.sync(name, { quiet: true });
      this.markReady();
    } catch (e) {
      this.markFailed(e);
      throw e;
    }
  }

  /** Re-read the config dir (what Manager.Reload and SIGHUP do). */
  reload(): Promise<void> {
    return this.exclusive(() => this.loadAll(true));
  }

  /** Stop answering; networks stay up (the engine is closed, not stopped). */
  async close(): Promise<void> {
    this.unsubscribe();
    this.objects.detach();
    await this.queue.catch(() => {});
  }

  // ---------------------------------------------------------------- state helpers

  /**
   * Changes to the set of networks (define, undefine, reload) run alone: after every call queued
   * before them, and before any queued after them.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = Promise.allSettled([this.queue, ...this.inFlight]).then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Calls on one network (start, stop, hosts, autostart) run one at a time per network, side by side
   * for different networks (the engine admits concurrent starts and catches their conflicts), never
   * beside an exclusive() call.
   */
  private perNetwork<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const run = Promise.allSettled([this.queue, this.networkTails.get(name)]).then(fn);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.networkTails.set(name, tail);
    this.inFlight.add(tail);
    // Bookkeeping once the call settled; `tail` never rejects (both outcomes handled above).
    void tail.then(() => {
      this.inFlight.delete(tail);
      if (this.networkTails.get(name) === tail) this.networkTails.delete(name);
    });
    return run;
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new NotFoundError(`no network named '${name}'`);
    return e;
  }

  private props(e: Entry): PropValues {
    return {
      Name: e.net.name,
      UUID: e.net.uuid,
      Active: this.o.engine.isActive(e.net.name),
      Autostart: e.autostart,
      Bridge: e.net.bridge.name ?? '',
      ForwardMode: e.net.forward.mode,
      Libvirt: this.o.publish?.status(e.net.name) ?? 'off',
      Span: spanSummary(e.net, this.o.engine.info(e.net.name)?.span),
    };
  }

  /** Announce a network's changed properties (the publisher's status). */
  refresh(name: string): void {
    this.sync(name);
  }

  /** What the libvirt migrator needs: each operation as its bus method does it (already authorized). */
  migrateOps(): Omit<MigrateOps, 'leaseFile'> {
    return {
      has: (name) => this.entries.get(name)?.persistent === true,
      isActive: (name) => this.o.engine.isActive(name),
      uuidOf: (name) => this.entry(name).net.uuid,
      bridgeOf: (name) => this.entry(name).net.bridge.name ?? '',
      // As a fresh definition: an inactive network of that name is replaced by it (the migrator
      // undefines it first and keeps its XML), so its uuid does not count.
      check: (xml) => {
        checkDefineXml(xml);
        const name = this.o.codec.parse(xml, { usedBridges: [] }).network.name;
        this.checkConflicts(this.o.codec.parse(xml, { usedBridges: this.usedBridges(name) }).network);
      },
      xmlOf: (name) => this.o.codec.format(this.entry(name).net),
      autostartOf: (name) => this.entry(name).autostart,
      define: (xml) => this.define(xml),
      // Start/Stop without waiting for the publisher: the migrator holds the network and publishes
      // itself, and every step here lies inside the domains' traffic gap.
      start: (name) =>
        this.perNetwork(name, async () => {
          const e = this.entry(name);
          if (!this.o.engine.isActive(name)) await this.o.engine.start(e.net);
          this.sync(name);
        }),
      stop: (name) =>
        this.perNetwork(name, async () => {
          this.entry(name);
          if (this.o.engine.isActive(name)) await this.o.engine.stop(name);
          this.sync(name);
        }),
      undefine: async (name) => {
        await this.networkCall(name, 'Undefine', []);
      },
      setAutostart: async (name, on) => {
        await this.networkCall(name, 'SetAutostart', [on]);
      },
      attachPort: (name, ifname, meta) =>
        this.perNetwork(name, () => this.o.engine.attachPort(name, ifname, meta)),
      path: (name) => this.entry(name).path,
    };
  }

  /** The networks as the publisher sees them. */
  publishView(): { name: string; uuid: string; bridge: string; active: boolean }[] {
    return [...this.entries.values()].map((e) => ({
      name: e.net.name,
      uuid: e.net.uuid,
      bridge: e.net.bridge.name ?? '',
      active: this.o.engine.isActive(e.net.name),
    }));
  }

  /**
   * Let libvirt follow a change before the call returns, so `virtnetctl start N; virsh start VM`
   * works; bounded, and a libvirt fault never fails the call (the Libvirt property says so).
   */
  private async publishNow(): Promise<void> {
    if (!this.o.publish) return;
    await withTimeout(
      this.o.publish.sync().catch((e: unknown) => {
        this.o.log.warning(`libvirt: ${(e as Error).message}`);
      }),
      PUBLISH_WAIT_MS,
      () => {
        this.o.log.warning(`libvirt did not follow within ${PUBLISH_WAIT_MS / 1000} s; still trying`);
      },
    );
  }

  private networkEvent(name: string, path: string, event: NetworkEventKind): void {
    this.objects.signal(MANAGER_PATH, MANAGER_INTERFACE, 'NetworkEvent', 'sos', [name, path, event]);
  }

  /**
   * Announce what changed about `name` since the last announcement: PropertiesChanged for changed
   * properties, NetworkEvent started/stopped when Active flipped. A stopped transient network goes away.
   */
  private sync(name: string, opts: { quiet?: boolean } = {}): void {
    const e = this.entries.get(name);
    if (!e) return;
    const now = this.props(e);
    const changed = Object.keys(now).filter((k) => e.shown[k] !== now[k]);
    const wasActive = e.shown.Active;
    e.shown = now;
    if (opts.quiet || !changed.length) return;
    this.objects.propertiesChanged(e.path, NETWORK_INTERFACE, changed);
    if (changed.includes('Active') && wasActive !== undefined) {
      this.networkEvent(name, e.path, now.Active ? 'started' : 'stopped');
    }
    if (!now.Active && !e.persistent) {
      this.entries.delete(name);
      this.objects.remove(e.path);
    }
  }

  private addEntry(net: Network, persistent: boolean, autostart: boolean): Entry {
    const e: Entry = { net, persistent, autostart, path: networkPath(net.name), shown: {} };
    this.entries.set(net.name, e);
    e.shown = this.props(e);
    this.objects.add(e.path, [this.networkImpl(e.net.name)]);
    return e;
  }

  private subscribe(): void {
    const l = this.listeners;
    l.started = (ev) => this.sync(ev.name);
    l.stopped = (ev) => this.sync(ev.name);
    l.repaired = (ev) => {
      const e = this.entries.get(ev.name);
      if (e) this.networkEvent(ev.name, e.path, 'repaired');
    };
    l['lease-changed'] = (ev) => {
      const e = this.entries.get(ev.name);
      if (!e) return;
      this.objects.signal(e.path, NETWORK_INTERFACE, 'LeaseChanged', 'ssss', [
        ev.event,
        ev.mac,
        ev.ip,
        ev.hostname ?? '',
      ]);
    };
    l['port-attached'] = (ev) => {
      const e = this.entries.get(ev.name);
      if (e)
        this.objects.signal(e.path, NETWORK_INTERFACE, 'PortAttached', 'sss', [ev.ifname, ev.mac, ev.domain]);
    };
    l['port-detached'] = (ev) => {
      const e = this.entries.get(ev.name);
      if (e) this.objects.signal(e.path, NETWORK_INTERFACE, 'PortDetached', 'ss', [ev.ifname, ev.domain]);
    };
    for (const k of Object.keys(l) as (keyof EngineEvents)[]) {
      this.o.engine.on(k, l[k] as (e: EngineEvents[typeof k]) => void);
    }
  }

  private unsubscribe(): void {
    const l = this.listeners;
    for (const k of Object.keys(l) as (keyof EngineEvents)[]) {
      this.o.engine.off(k, l[k] as (e: EngineEvents[typeof k]) => void);
      delete l[k];
    }
  }

  private usedBridges(except: string): string[] {
    const out: string[] = [];
    for (const [n, e] of this.entries) if (n !== except && e.net.bridge.name) out.push(e.net.bridge.name);
    return out;
  }

  /** Conflicts of a new/changed definition with the other networks. */
  private checkConflicts(net: Network): void {
    for (const [n, e] of this.entries) {
      if (n === net.name) continue;
      if (normUuid(e.net.uuid) === normUuid(net.uuid)) {
        throw new ConflictError(`uuid ${net.uuid} is already used by network '${n}'`);
      }
      if (net.bridge.name && e.net.bridge.name === net.bridge.name) {
        throw new ConflictError(`bridge '${net.bridge.name}' is already used by network '${n}'`);
      }
    }
  }

  /** Parse a definition for `name`'s slot, keeping identity from the previous one. */
  private parse(xml: string): Network {
    return this.parseFull(xml).net;
  }

  private parseFull(xml: string): { net: Network; generated: boolean } {
    // First pass only to learn the name (defaults need to know what it replaces).
    const probe = this.o.codec.parse(xml, { usedBridges: [] }).network;
    const previous = this.entries.get(probe.name)?.net;
    const parsed = this.o.codec.parse(xml, {
      ...(previous ? { previous } : {}),
      usedBridges: this.usedBridges(probe.name),
    });
    const net = parsed.network;
    if (previous && normUuid(previous.uuid) !== normUuid(net.uuid)) {
      if (parsed.explicitUuid) {
        throw new ConflictError(
          `network '${net.name}' already exists with uuid ${previous.uuid}; the XML gives ${net.uuid} (omit <uuid> or use ${previous.uuid} to redefine it)`,
        );
      }
      net.uuid = previous.uuid;
    }
    for (const w of parsed.warnings) this.o.log.warning(`network '${net.name}': ${w}`, { network: net.name });
    return { net, generated: parsed.generated };
  }

  /**
   * (Re)load every file in the config dir. With `announce`, differences from memory are signalled
   * (Reload); at startup objects are simply created. An invalid file leaves the network as it was.
   */
  private async loadAll(announce: boolean): Promise<void> {
    const { files, unreadable } = await this.o.store.readAll();
    for (const u of unreadable) this.o.log.error(`cannot read ${u.path}: ${u.reason}`);
    const seen = new Set<string>(unreadable.map((u) => u.stem));
    for (const f of files) {
      const known = this.entries.get(f.stem);
      if (known?.persistent && this.fileText.get(f.stem) === f.xml) {
        // Unchanged since we read or wrote it (e.g. the watcher reacting to our own DefineNetwork).
        seen.add(f.stem);
        const autostart = await this.o.store.isAutostart(f.stem);
        if (autostart !== known.autostart) {
          known.autostart = autostart;
          this.sync(f.stem, { quiet: !announce });
        }
        continue;
      }
      let net: Network;
      let generated: boolean;
      try {
        ({ net, generated } = this.parseFull(f.xml));
      } catch (e) {
        seen.add(f.stem);
        this.o.log.error(`invalid network file ${f.path}: ${(e as Error).message}`);
        continue;
      }
      if (net.name !== f.stem) {
        this.o.log.error(
          `network file ${f.path} defines network '${net.name}'; the file must be named ${net.name}.xml — ignored`,
        );
        continue;
      }
      seen.add(net.name);
      try {
        this.checkConflicts(net);
        this.fileText.set(net.name, f.xml);
      } catch (e) {
        this.o.log.error(`network file ${f.path}: ${(e as Error).message} — ignored`);
        continue;
      }
      if (generated) {
        // A file without uuid / MAC / bridge name (e.g. the packaged default.xml) gets the generated
        // values written back, as libvirt's net-define does: the network keeps its identity (and its
        // libvirt twin its UUID) across restarts.
        const text = this.o.codec.format(net);
        try {
          await this.o.store.write(net.name, text);
          this.fileText.set(net.name, text);
          this.o.log.info(`network file ${f.path}: wrote the generated uuid/MAC/bridge name back`, {
            network: net.name,
          });
        } catch (e) {
          this.o.log.warning(
            `network file ${f.path}: cannot write the generated identity back: ${(e as Error).message}`,
          );
        }
      }
      const autostart = await this.o.store.isAutostart(net.name);
      const old = this.entries.get(net.name);
      if (!old) {
        const e = this.addEntry(net, true, autostart);
        if (announce) this.networkEvent(net.name, e.path, 'defined');
        continue;
      }
      const changed = this.o.codec.format(old.net) !== this.o.codec.format(net);
      old.net = net;
      old.persistent = true;
      old.autostart = autostart;
      if (changed && announce) {
        this.networkEvent(net.name, old.path, 'defined');
        if (this.o.engine.isActive(net.name)) {
          await this.o.engine.update(net);
          this.networkEvent(net.name, old.path, 'updated');
        }
      }
      this.sync(net.name, { quiet: !announce });
    }
    for (const [name, e] of [...this.entries]) {
      if (seen.has(name) || !e.persistent) continue;
      if (this.o.engine.isActive(name) && this.o.onFileRemoved === 'stop') {
        try {
          await this.o.engine.stop(name); // logged by the engine
          this.o.log.info(`network '${name}': its config file is gone; stopped (--on-file-removed stop)`, {
            network: name,
          });
          this.sync(name);
        } catch (err) {
          this.o.log.error(
            `network '${name}': its config file is gone, but stopping it failed: ${(err as Error).message}`,
            { network: name },
          );
        }
      }
      if (this.o.engine.isActive(name)) {
        e.persistent = false;
        e.autostart = false;
        this.o.log.warning(
          `network '${name}': its config file is gone; it stays up (transient) until stopped`,
          {
            network: name,
          },
        );
        this.sync(name);
      } else {
        this.entries.delete(name);
        this.fileText.delete(name);
        this.networkEvent(name, e.path, 'undefined');
        this.objects.remove(e.path);
      }
    }
  }

  /**
   * What the hook handler sees of the service: the defined networks, and where its events go — port
   * events become the network's PortAttached/PortDetached (as the engine's own do), a libvirt-managed
   * network's hook call becomes NetworkEvent(name, manager path, 'libvirt-<operation>').
   */
  hookView(): HookServiceView {
    return {
      networks: () => [...this.entries.values()].map((e) => e.net),
      emit: (event, payload) => {
        if (event === 'port-attached') {
          const p = payload as HookEvents['port-attached'];
          this.listeners['port-attached']?.({
            name: p.network,
            ifname: p.ifname,
            mac: p.mac,
            domain: p.domain,
          });
        } else if (event === 'port-detached') {
          const p = payload as HookEvents['port-detached'];
          this.listeners['port-detached']?.({ name: p.network, ifname: p.ifname, domain: p.domain });
        } else if (event === 'libvirt-network') {
          const p = payload as HookEvents['libvirt-network'];
          this.objects.signal(MANAGER_PATH, MANAGER_INTERFACE, 'NetworkEvent', 'sos', [
            p.name,
            MANAGER_PATH,
            `libvirt-${p.operation}`,
          ]);
        }
      },
    };
  }

  // ---------------------------------------------------------------- Manager

  private managerImpl(): InterfaceImpl {
    return {
      spec: managerInterface,
      get: (p) => {
        if (p === 'Version') return this.o.version;
        throw new Error(`no property ${p}`);
      },
      call: async (m, args) => {
        switch (m) {
          case 'ListNetworks':
            return [[...this.entries.values()].map((e) => e.path).sort()];
          case 'GetNetworkByName': {
            const name = args[0] as string;
            checkNetworkName(name);
            const e = this.entries.get(name);
            if (!e) {
              const known = [...this.entries.keys()].sort().join(', ') || 'none';
              throw new NotFoundError(`no network named '${name}' (defined: ${known})`);
            }
            return [e.path];
          }
          case 'DefineNetwork': {
            const path = await this.define(args[0] as string);
            await this.publishNow();
            return [path];
          }
          case 'Reload':
            await this.reload();
            await this.publishNow();
            return [];
          case 'ImportLibvirt':
          case 'RevertLibvirt': {
            const [name, uri] = args as [string, string];
            checkNetworkName(name);
            if (!this.o.migrate) throw new Error('this virtnetd cannot migrate libvirt networks');
            if (m === 'ImportLibvirt') return [await this.o.migrate.import(name, uri)];
            await this.o.migrate.revert(name, uri);
            return [];
          }
          case 'HookEvent': {
            const [object, operation, sub, extra, xml] = args as string[];
            checkHookArgs(object!, operation!, sub!, extra!, xml!);
            if (!this.o.hooks) return [''];
            const a = {
              object: object!,
              operation: operation!,
              subOperation: sub!,
              extra: extra!,
              xml: xml!,
            };
            this.o.publish?.libvirtSeen();
            return [await this.o.hooks.hookEvent(a, this.hookView())];
          }
          default:
            throw new Error(`unhandled method ${m}`);
        }
      },
    };
  }

  private define(xml: string): Promise<string> {
    checkDefineXml(xml);
    return this.exclusive(() => this.storeDefinition(this.parse(xml)));
  }

  /**
   * Network.Update: libvirt's virNetworkUpdate applied to the stored definition, which is then stored
   * and (when active) applied live exactly as a DefineNetwork of the result.
   */
  private updateSection(name: string, args: unknown[]): Promise<unknown[]> {
    const [section, command, parentIndex, xml] = args as [string, string, number, string];
    checkDefineXml(xml);
    return this.exclusive(async () => {
      const e = this.entry(name);
      if (!e.persistent) {
        throw new ConflictError(`network '${name}' has no config file (transient); define it first`);
      }
      const net = updateNetwork(e.net, section as UpdateSection, command as UpdateCommand, xml, parentIndex);
      await this.storeDefinition(net);
      return [];
    });
  }

  /** Store a definition and create or (live) update its network; runs inside exclusive(). */
  private async storeDefinition(net: Network): Promise<string> {
    this.checkConflicts(net);
    const text = this.o.codec.format(net);
    await this.o.store.write(net.name, text);
    this.fileText.set(net.name, text);
    const old = this.entries.get(net.name);
    this.o.log.info(`defined network '${net.name}'`, { network: net.name });
    if (!old) {
      const e = this.addEntry(net, true, false);
      this.networkEvent(net.name, e.path, 'defined');
      return e.path;
    }
    old.net = net;
    old.persistent = true;
    this.networkEvent(net.name, old.path, 'defined');
    this.sync(net.name);
    if (this.o.engine.isActive(net.name)) {
      await this.o.engine.update(net);
      this.networkEvent(net.name, old.path, 'updated');
    }
    return old.path;
  }

  // ---------------------------------------------------------------- Network

  private networkImpl(name: string): InterfaceImpl {
    return {
      spec: networkInterface,
      get: (p) => {
        const e = this.entries.get(name);
        if (!e) throw new NotFoundError(`network '${name}' no longer exists`);
        const v = this.props(e)[p];
        if (v === undefined) throw new Error(`no property ${p}`);
        return v;
      },
      call: (m, args) => this.networkCall(name, m, args),
    };
  }

  private async networkCall(name: string, m: string, args: unknown[]): Promise<unknown[]> {
    switch (m) {
      case 'GetXML':
        return [this.o.codec.format(this.entry(name).net)];
      case 'GetLeases': {
        this.entry(name);
        if (!this.o.engine.isActive(name)) return [[]];
        const leases = await this.o.engine.leases(name);
        return [leases.map((l) => [l.mac, l.ip, l.hostname ?? '', BigInt(Math.trunc(l.expiry))])];
      }
      case 'Doctor': {
        this.entry(name);
        if (!this.o.engine.isActive(name)) throw new ConflictError(`network '${name}' is not active`);
        if (!this.o.engine.doctor) throw new Error('this engine has no doctor');
        const findings = await this.o.engine.doctor(name);
        return [findings.map((f) => [f.check, f.status, f.detail, f.fix])];
      }
      case 'GetSpanPeers': {
        this.entry(name);
        if (!this.o.engine.isActive(name)) return [[]];
        const peers = await this.o.engine.spanPeers(name);
        return [peers.map((p) => [p.address, p.role, p.state, p.macs])];
      }
      case 'GetLeasesWithDomains': {
        // GetLeases' fields, then the libvirt domain that owns the MAC ('' when unknown), from the
        // hook records.
        this.entry(name);
        if (!this.o.engine.isActive(name)) return [[]];
        const [leases, owners] = await Promise.all([
          this.o.engine.leases(name),
          this.o.hooks?.domainsByMac(name) ?? new Map<string, string>(),
        ]);
        return [
          leases.map((l) => [
            l.mac,
            l.ip,
            l.hostname ?? '',
            BigInt(Math.trunc(l.expiry)),
            owners.get(l.mac.toLowerCase()) ?? '',
          ]),
        ];
      }
      case 'Start':
        return this.perNetwork(name, async () => {
          const e = this.entry(name);
          if (this.o.engine.isActive(name)) throw new ConflictError(`network '${name}' is already active`);
          await this.o.engine.start(e.net); // the engine logs each change and the start
          this.sync(name);
          await this.publishNow();
          return [];
        });
      case 'Stop':
        return this.perNetwork(name, async () => {
          this.entry(name);
          if (!this.o.engine.isActive(name)) throw new ConflictError(`network '${name}' is not active`);
          await this.o.engine.stop(name); // the engine logs each change and the stop
          this.sync(name);
          await this.publishNow();
          return [];
        });
      case 'Undefine':
        return this.exclusive(async () => {
          const e = this.entry(name);
          if (this.o.engine.isActive(name)) {
            throw new ConflictError(`network '${name}' is active; stop it first (virtnetctl stop ${name})`);
          }
          await this.o.store.remove(name);
          this.entries.delete(name);
          this.fileText.delete(name);
          this.o.log.info(`undefined network '${name}'`, { network: name });
          this.networkEvent(name, e.path, 'undefined');
          this.objects.remove(e.path);
          await this.publishNow();
          return [];
        });
      case 'SetAutostart':
        return this.perNetwork(name, async () => {
          const e = this.entry(name);
          const on = args[0] as boolean;
          if (!e.persistent) {
            throw new ConflictError(`network '${name}' has no config file (transient); define it first`);
          }
          await this.o.store.setAutostart(name, on);
          e.autostart = on;
          this.sync(name);
          return [];
        });
      case 'AddHost':
        return this.perNetwork(name, async () => {
          const e = this.entry(name);
          const [mac, ip, hostname] = args as [string, string, string];
          const host = checkHostArgs(e.net, mac, ip, hostname);
          this.requireActive(name, 'add a host');
          await this.o.engine.addHost(name, host); // logged by the engine
          return [];
        });
      case 'Update':
        return this.updateSection(name, args);
      case 'RemoveHost':
        return this.perNetwork(name, async () => {
          this.entry(name);
          const mac = checkMac(args[0] as string);
          this.requireActive(name, 'remove a host');
          await this.o.engine.removeHost(name, mac); // logged by the engine
          return [];
        });
      default:
        throw new Error(`unhandled method ${m}`);
    }
  }

  private requireActive(name: string, what: string): void {
    if (!this.o.engine.isActive(name)) {
      throw new ConflictError(
        `cannot ${what}: network '${name}' is not active (hosts are added live; start it first)`,
      );
    }
  }
}
