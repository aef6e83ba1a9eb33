/**
 * Moving a libvirt network to virtnet and back, with running VMs kept:
 * `Manager.ImportLibvirt` / `virtnetctl import-libvirt NAME` and `RevertLibvirt` / `revert-libvirt`.
 *
 * Import: libvirt's inactive XML (unchanged) is checked against virtnet first; a journal is written
 * (atomically) before anything changes — the original XML byte for byte, whether it was active and
 * autostarted, the running domains' taps on it and its DHCP leases from libvirt's status file. Then:
 * libvirt's copy is stopped (libvirt deletes the bridge; the taps live on in QEMU), the network is
 * defined and started in virtnet (autostart as libvirt had it, leases carried into dnsmasq's lease
 * file first), libvirt's definition is replaced by the published bridge-mode one (same name and UUID),
 * and the taps are put on virtnet's bridge. Revert does the opposite from the journal and removes it.
 *
 * Every step looks at the real state before acting, so running the same command again after an
 * interruption (kill -9 of the daemon at any point) finishes the job, and running it twice is a no-op.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseLeases } from '../dnsmasq/leases.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import type { CommandRunner } from '../exec/runner.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { Logger } from '../util/log.js';
import { classify, libvirtNetworkFacts, portHookXml } from './publish.js';
import { carryOverLines, parseStatusFile, type StatusLease } from './status-leases.js';
import type { DomainPort, Virsh } from './virsh.js';

/** What the migrator needs of the service (each call does what the bus method of that name does). */
export interface MigrateOps {
  has(name: string): boolean;
  isActive(name: string): boolean;
  uuidOf(name: string): string;
  bridgeOf(name: string): string;
  /** The definition of an existing network (kept when an import replaces it). */
  xmlOf(name: string): string;
  autostartOf(name: string): boolean;
  /** Throws (ValidationError / ConflictError) when virtnet cannot serve this XML; changes nothing. */
  check(xml: string): void;
  define(xml: string): Promise<string>;
  start(name: string): Promise<void>;
  stop(name: string): Promise<void>;
  undefine(name: string): Promise<void>;
  setAutostart(name: string, on: boolean): Promise<void>;
  attachPort(name: string, ifname: string, meta: { mac: string; domain: string }): Promise<void>;
  /** The dnsmasq lease file of a network (its text is carried over before the first start). */
  leaseFile(name: string): string;
  path(name: string): string;
}

export interface MigratorOptions {
  ops: MigrateOps;
  virsh(uri: string): Virsh;
  /** The daemon's --libvirt URI (undefined: 'none', then the caller must name one). */
  defaultUri: string | undefined;
  /** Journals, one <name>.json each. */
  journalDir: string;
  /** Where libvirt's dnsmasq keeps `<bridge>.status` (default /var/lib/libvirt/dnsmasq). */
  statusDir: string;
  /** For `ip link` (taps back on libvirt's bridge at revert). */
  runner: CommandRunner;
  /** The publisher: leave a network alone while it migrates, and bring libvirt in line. */
  publish: {
    hold(name: string): void;
    release(name: string): void;
    sync(): Promise<void>;
    status(name: string): string;
  };
  log: Logger;
  now?: () => number;
  /**
   * Hand a network hook call to the hooks' handler (the daemon's HookEvent path): the import registers
   * the running domains' ports with `port-created`, revert removes them with `port-deleted`.
   */
  portEvent?: (network: string, operation: 'port-created' | 'port-deleted', xml: string) => Promise<void>;
}

export interface Journal {
  version: 1;
  name: string;
  uri: string;
  /** libvirt's `net-dumpxml --inactive` at import, byte for byte. */
  original: string;
  uuid: string;
  /** libvirt's bridge (where revert puts the taps back). */
  bridge: string;
  wasActive: boolean;
  wasAutostart: boolean;
  /** Taps of running domains found on libvirt's network at import. */
  ports: DomainPort[];
  /** libvirt's leases from its status file, carried into dnsmasq's lease file before the first start. */
  leases: StatusLease[];
  /** Set once import finished. */
  done: boolean;
  /** virtnet's own inactive definition of that name that the import replaced (revert puts it back). */
  replaced?: { xml: string; autostart: boolean };
}

export class LibvirtMigrator {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: MigratorOptions) {}

  private journalPath(name: string): string {
    return join(this.o.journalDir, `${name}.json`);
  }

  private async readJournal(name: string): Promise<Journal | undefined> {
    let text: string;
    try {
      text = await readFile(this.journalPath(name), 'utf8');
    } catch {
      return undefined;
    }
    let j: Journal;
    try {
      j = JSON.parse(text) as Journal;
    } catch (e) {
      throw new ValidationError([
        { path: 'journal', value: this.journalPath(name), reason: `is not JSON (${(e as Error).message})` },
      ]);
    }
    if (j?.version !== 1 || j.name !== name || typeof j.original !== 'string' || !Array.isArray(j.leases)) {
      throw new ValidationError([
        {
          path: 'journal',
          value: this.journalPath(name),
          reason: 'is not an import journal of this version',
        },
      ]);
    }
    return j;
  }

  private async writeJournal(j: Journal): Promise<void> {
    await mkdir(this.o.journalDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.journalPath(j.name), `${JSON.stringify(j, null, 2)}\n`, { mode: 0o600 });
  }

  private uri(given: string): string {
    const uri = given || this.o.defaultUri;
    if (!uri) {
      throw new ValidationError([
        {
          path: 'uri',
          value: given,
          reason: 'virtnetd runs with --libvirt none: name the libvirt URI (--connect)',
        },
      ]);
    }
    return uri;
  }

  /** One migration at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => {});
    return run;
  }

  /** Import libvirt's network `name`; resolves with the virtnet network's object path. */
  import(name: string, givenUri: string): Promise<string> {
    return this.serial(() => this.doImport(name, givenUri));
  }

  revert(name: string, givenUri: string): Promise<void> {
    return this.serial(() => this.doRevert(name, givenUri));
  }

  private async doImport(name: string, givenUri: string): Promise<string> {
    this.o.publish.hold(name);
    try {
      return await this.importSteps(name, givenUri);
    } finally {
      this.o.publish.release(name);
    }
  }

  private async doRevert(name: string, givenUri: string): Promise<void> {
    this.o.publish.hold(name);
    try {
      await this.revertSteps(name, givenUri);
    } finally {
      this.o.publish.release(name);
    }
    await this.o.publish.sync(); // forgets its record of the copy
  }

  private async importSteps(name: string, givenUri: string): Promise<string> {
    const { ops, log } = this.o;
    let j = await this.readJournal(name);
    const virsh = this.o.virsh(j?.uri ?? this.uri(givenUri));
    if (!j) {
      // virtnet's own network of that name (e.g. the packaged default) is replaced when it is not
      // running; its definition is kept in the journal and comes back at revert.
      if (ops.has(name) && ops.isActive(name)) {
        throw new ConflictError(
          `virtnet's own network '${name}' is active; stop it first (virtnetctl stop ${name}) — the import replaces its definition by libvirt's`,
        );
      }
      const lv = await virsh.network(name);
      if (lv.xml === undefined)
        throw new NotFoundError(`libvirt at ${virsh.uri} has no network named '${name}'`);
      ops.check(lv.xml); // what virtnet cannot serve is refused before anything changes
      const facts = libvirtNetworkFacts(lv.xml);
      const bridge = lv.active ? libvirtNetworkFacts(await virsh.liveXml(name)).bridge : facts.bridge;
      const ports = lv.active ? await virsh.portsOn(name, bridge) : [];
      j = {
        version: 1,
        name,
        uri: virsh.uri,
        original: lv.xml,
        uuid: facts.uuid,
        bridge,
        wasActive: lv.active,
        wasAutostart: lv.autostart,
        ports,
        leases: await this.statusLeases(bridge),
        done: false,
      };
      if (ops.has(name)) j.replaced = { xml: ops.xmlOf(name), autostart: ops.autostartOf(name) };
      await this.writeJournal(j);
      log.info(
        `import-libvirt ${name}: journal written (${ports.length} running domain interface(s), ${j.leases.length} lease(s) to carry over)`,
        { network: name },
      );
    }
    // 1. virtnet defines it (libvirt's XML unchanged) with libvirt's autostart, and the leases are
    //    carried into its dnsmasq lease file — all before libvirt's copy stops, so the time the
    //    domains' taps have no bridge is only what steps 2-4 take.
    if (ops.has(name) && ops.uuidOf(name).toLowerCase() !== j.uuid) {
      if (ops.isActive(name)) await ops.stop(name);
      await ops.undefine(name); // the replaced definition is in the journal
    }
    if (!ops.has(name)) await ops.define(j.original);
    await ops.setAutostart(name, j.wasAutostart);
    if (!ops.isActive(name) && j.leases.length) await this.carryLeases(name, j.leases);
    const mine = { name, uuid: ops.uuidOf(name), bridge: ops.bridgeOf(name) };
    // 2. libvirt's own copy stops (unless this is a re-run and it is already replaced).
    const lv = await virsh.network(name);
    const libvirtIsOriginal = lv.xml !== undefined && classify(mine, lv.xml).kind !== 'own';
    const t0 = performance.now();
    if (libvirtIsOriginal && lv.active) await virsh.destroy(name);
    const tDestroyed = performance.now();
    // 3. virtnet starts it.
    if (!ops.isActive(name)) await ops.start(name);
    const tStarted = performance.now();
    // 4. The running domains' taps go onto virtnet's bridge: all in one `ip -batch` (their traffic
    //    gap ends here), then each through the engine, which records and announces it.
    const bridge = ops.bridgeOf(name);
    // (a tap gone meanwhile — its domain stopped — is reported by attachPort below)
    if (j.ports.length) await this.moveTaps(`import-libvirt: taps onto ${bridge}`, j.ports, bridge);
    const tAttached = performance.now();
    for (const p of j.ports) {
      try {
        await ops.attachPort(name, p.ifname, { mac: p.mac, domain: p.domain });
      } catch (e) {
        log.warning(
          `import-libvirt ${name}: tap ${p.ifname} of ${p.domain} not attached: ${(e as Error).message}`,
          {
            network: name,
          },
        );
      }
    }
    if (j.ports.length) {
      // What the domains felt: from libvirt's stop (its bridge goes first) to the last tap attached.
      log.info(
        `import-libvirt ${name}: ${j.ports.length} tap(s) back on a bridge after ${Math.round(tAttached - t0)} ms (libvirt's stop ${Math.round(tDestroyed - t0)} ms, virtnet's start ${Math.round(tStarted - tDestroyed)} ms, taps ${Math.round(tAttached - tStarted)} ms)`,
        { network: name },
      );
    }
    // 5. libvirt's definition becomes the published bridge-mode copy (same name and UUID).
    if (libvirtIsOriginal) await virsh.undefine(name);
    this.o.publish.release(name);
    await this.o.publish.sync();
    const status = this.o.publish.status(name);
    if (status !== 'published') {
      throw new ConflictError(
        `import-libvirt ${name}: libvirt's network was not replaced by virtnet's bridge-mode copy (${status}); run the import again`,
      );
    }
    await this.portEvents(name, j, 'port-created');
    if (!j.done) {
      j.done = true;
      await this.writeJournal(j);
      log.info(`import-libvirt ${name}: done; libvirt's original is kept for revert-libvirt`, {
        network: name,
      });
    }
    return ops.path(name);
  }

  private async revertSteps(name: string, givenUri: string): Promise<void> {
    const { ops, log } = this.o;
    const j = await this.readJournal(name);
    if (!j) {
      throw new NotFoundError(
        `network '${name}' was not imported from libvirt by this virtnet (no journal ${this.journalPath(name)})`,
      );
    }
    const virsh = this.o.virsh(givenUri || j.uri);
    // The taps to move back: running domains on the published copy (or on virtnet's bridge).
    if (ops.has(name) && ops.isActive(name)) {
      const now = await virsh.portsOn(name, ops.bridgeOf(name)).catch(() => [] as DomainPort[]);
      const known = new Set(j.ports.map((p) => p.ifname));
      const add = now.filter((p) => !known.has(p.ifname));
      if (add.length) {
        j.ports.push(...add);
        await this.writeJournal(j);
      }
    }
    // 1. libvirt gets its original definition back (unless it already has it) while virtnet still
    //    serves the bridge: an inactive definition needs no bridge.
    let lv = await virsh.network(name);
    if (lv.xml !== j.original) {
      if (lv.xml !== undefined) {
        if (lv.active) await virsh.destroy(name);
        await virsh.undefine(name);
      }
      await virsh.define(j.original);
      lv = await virsh.network(name);
    }
    if (lv.autostart !== j.wasAutostart) await virsh.setAutostart(name, j.wasAutostart);
    // 2. virtnet stops it, libvirt starts its own, the taps go back onto libvirt's bridge.
    const imported = ops.has(name) && ops.uuidOf(name).toLowerCase() === j.uuid;
    if (imported && ops.isActive(name)) {
      await this.portEvents(name, j, 'port-deleted');
      await ops.stop(name);
    }
    if (j.wasActive && !lv.active) await virsh.start(name);
    if (j.wasActive) {
      const bridge = j.bridge || libvirtNetworkFacts(await virsh.liveXml(name)).bridge;
      if (j.ports.length) {
        const r = await this.moveTaps(`revert-libvirt: taps onto ${bridge}`, j.ports, bridge);
        if (r.exitCode !== 0) log.warning(`revert-libvirt ${name}: not every tap moved: ${r.stderr.trim()}`);
      }
    }
    // 3. virtnet forgets it (and gets back its own definition the import replaced, inactive).
    if (imported) await ops.undefine(name);
    if (j.replaced && !ops.has(name)) {
      await ops.define(j.replaced.xml);
      if (j.replaced.autostart) await ops.setAutostart(name, true);
    }
    await rm(this.journalPath(name), { force: true });
    log.info(`revert-libvirt ${name}: libvirt's original definition is back`, { network: name });
  }

  /** The journal's ports through the hooks' port path (registered at import, removed at revert). */
  private async portEvents(name: string, j: Journal, op: 'port-created' | 'port-deleted'): Promise<void> {
    if (!this.o.portEvent) return;
    const t = { name, uuid: this.o.ops.uuidOf(name), bridge: this.o.ops.bridgeOf(name) };
    for (const p of j.ports) {
      try {
        await this.o.portEvent(name, op, portHookXml(t, p));
      } catch (e) {
        this.o.log.warning(`${name}: ${op} of ${p.domain}'s ${p.mac}: ${(e as Error).message}`, {
          network: name,
        });
      }
    }
  }

  private async statusLeases(bridge: string): Promise<StatusLease[]> {
    if (!bridge) return [];
    let text: string;
    try {
      text = await readFile(join(this.o.statusDir, `${bridge}.status`), 'utf8');
    } catch {
      return [];
    }
    const st = parseStatusFile(text);
    for (const p of st.problems)
      this.o.log.warning(`libvirt status file ${bridge}.status: ${p.path}: ${p.reason}`);
    return st.leases;
  }

  /** The journal's leases still valid, appended to dnsmasq's lease file (none twice: carryOverLines). */
  private async carryLeases(name: string, leases: StatusLease[]): Promise<void> {
    const file = this.o.ops.leaseFile(name);
    const have = await readFile(file, 'utf8').catch(() => '');
    const nowSec = Math.floor((this.o.now?.() ?? Date.now()) / 1000);
    const add = carryOverLines(leases, nowSec, parseLeases(have));
    if (!add) return;
    await mkdir(dirname(file), { recursive: true });
    await writeFileAtomic(file, `${have}${have && !have.endsWith('\n') ? '\n' : ''}${add}`, { mode: 0o644 });
  }

  /** The taps onto `bridge` in one `ip -batch` (a tap gone meanwhile fails only its own line). */
  private moveTaps(step: string, ports: DomainPort[], bridge: string) {
    return this.o.runner.run({
      step,
      argv: ['ip', '-force', '-batch', '-'],
      input: ports.map((p) => `link set dev ${p.ifname} master ${bridge} up\n`).join(''),
      allowFail: true,
    });
  }
}
