/**
 * Keeps libvirt in line with virtnet's networks ("publishing"): while a virtnet network is
 * defined, libvirt has a network of the same name and UUID, `<forward mode='bridge'/>` on its bridge,
 * autostarted, and active exactly while virtnet's is — so `virsh net-list`, virt-manager and
 * `virt-install --network network=NAME` see it and `type='network'` interfaces land on virtnet's bridge.
 * When the virtnet network is undefined, its libvirt copy is taken out. A libvirt network of that name
 * that is not virtnet's own is never touched: the status says so and the log says what to run.
 *
 * What virtnetd published is recorded in a state file (written atomically before libvirt is changed),
 * so a copy whose virtnet network was undefined while the daemon was down is still taken out.
 *
 * libvirt down or not installed: every network's status is `pending: …` and sync is retried with
 * backoff (and at once when libvirt shows it is alive, i.e. a hook call arrives). Inert until start().
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { Logger } from '../util/log.js';
import { foreignMessage, type PublishStep, type PublishTarget, planPublish } from './publish.js';
import { LibvirtUnreachable, type Virsh } from './virsh.js';

/** A virtnet network as the publisher needs it. */
export interface PublishView {
  name: string;
  uuid: string;
  /** '' when the network has no bridge (macvtap / hostdev forward): not published. */
  bridge: string;
  active: boolean;
}

export interface PublisherOptions {
  /** undefined = publishing off (`--libvirt none`). */
  virsh: Virsh | undefined;
  /** JSON list of the networks published (name, uuid, bridge). */
  stateFile: string;
  log: Logger;
  /** The defined virtnet networks, now. */
  view: () => PublishView[];
  /** A network's status changed (the service announces the property). */
  onStatus: (name: string) => void;
  /** First retry after a failure (doubles up to maxRetryMs). */
  retryMs?: number;
  maxRetryMs?: number;
}

export class LibvirtPublisher {
  private readonly statuses = new Map<string, string>();
  private readonly logged = new Map<string, string>();
  private running: Promise<void> | undefined;
  private again: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delay: number;
  private started = false;
  private pending = false;
  /** Networks being imported/reverted (migrate.ts): left alone until released. */
  private readonly held = new Set<string>();

  constructor(private readonly o: PublisherOptions) {
    this.delay = o.retryMs ?? 2000;
  }

  get enabled(): boolean {
    return this.o.virsh !== undefined;
  }

  /** The network's publication status (the `Libvirt` property): off, published, pending: …, foreign: …. */
  status(name: string): string {
    if (!this.o.virsh) return 'off';
    return this.statuses.get(name) ?? 'pending: not yet published';
  }

  start(): Promise<void> {
    this.started = true;
    return this.sync();
  }

  stop(): Promise<void> {
    this.started = false;
    clearTimeout(this.timer);
    return Promise.allSettled([this.running, this.again]).then(() => {});
  }

  /** Leave `name` alone (an import or revert is moving it between libvirt and virtnet). */
  hold(name: string): void {
    this.held.add(name);
    this.setStatus(name, 'pending: migrating between libvirt and virtnet');
  }

  release(name: string): void {
    this.held.delete(name);
  }

  /** Evidence that libvirt runs (a hook call): retry now if the last attempt could not reach it. */
  libvirtSeen(): void {
    if (this.started && this.pending) this.syncInBackground();
  }

  /** sync() where nobody awaits it (a timer, a hook's evidence): a failure is logged, never unhandled. */
  private syncInBackground(): void {
    this.sync().catch((e: unknown) =>
      this.o.log.warning(`libvirt: publishing failed: ${(e as Error).message}`),
    );
  }

  /** Bring libvirt in line with the networks now; coalesces calls made while a sync runs. */
  sync(): Promise<void> {
    if (!this.o.virsh || !this.started) return Promise.resolve();
    if (this.running) {
      this.again ??= this.running.then(() => {
        this.again = undefined;
        return this.sync();
      });
      return this.again;
    }
    clearTimeout(this.timer);
    this.running = this.syncOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private setStatus(name: string, s: string): void {
    if (this.statuses.get(name) === s) return;
    this.statuses.set(name, s);
    this.o.onStatus(name);
  }

  /** Log a network's message once (again only when it changes). */
  private logOnce(name: string, level: 'warning' | 'info', msg: string): void {
    if (this.logged.get(name) === msg) return;
    this.logged.set(name, msg);
    this.o.log.log(level, msg, { network: name });
  }

  private retryLater(): void {
    if (!this.started) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.syncInBackground(), this.delay);
    this.timer.unref();
    this.delay = Math.min(this.delay * 2, this.o.maxRetryMs ?? 60_000);
  }

  private async syncOnce(): Promise<void> {
    const virsh = this.o.virsh!;
    const want = this.o.view();
    let failed = false;
    try {
      await virsh.ping();
      const records = await this.readRecords();
      for (const n of want) {
        if (this.held.has(n.name)) continue;
        try {
          await this.publishOne(virsh, n, records);
        } catch (e) {
          if (e instanceof LibvirtUnreachable) throw e;
          failed = true;
          const msg = `libvirt: publishing network ${n.name} failed: ${(e as Error).message}`;
          this.logOnce(n.name, 'warning', msg);
          this.setStatus(n.name, `pending: ${(e as Error).message}`);
        }
      }
      const names = new Set(want.map((n) => n.name));
      for (const r of [...records.values()]) {
        if (names.has(r.name) || this.held.has(r.name)) continue;
        try {
          const plan = planPublish(r, await virsh.network(r.name), 'absent');
          await this.apply(virsh, r.name, plan.steps);
          if (plan.steps.length)
            this.o.log.info(`libvirt: took network ${r.name} out (undefined in virtnet)`);
          records.delete(r.name);
          await this.writeRecords(records);
        } catch (e) {
          if (e instanceof LibvirtUnreachable) throw e;
          failed = true;
          this.o.log.warning(`libvirt: taking network ${r.name} out failed: ${(e as Error).message}`);
        }
        this.statuses.delete(r.name);
        this.logged.delete(r.name);
      }
      this.pending = false;
    } catch (e) {
      if (!(e instanceof LibvirtUnreachable)) throw e;
      failed = true;
      this.pending = true;
      for (const n of want.filter((x) => !this.held.has(x.name))) {
        this.setStatus(n.name, `pending: ${e.message}`);
        this.logOnce(n.name, 'info', `libvirt: network ${n.name} not published yet: ${e.message}`);
      }
    }
    if (failed) this.retryLater();
    else this.delay = this.o.retryMs ?? 2000;
  }

  private async publishOne(virsh: Virsh, n: PublishView, records: Map<string, PublishTarget>): Promise<void> {
    if (!n.bridge) {
      this.setStatus(n.name, 'not published: the network has no bridge');
      return;
    }
    const t: PublishTarget = { name: n.name, uuid: n.uuid, bridge: n.bridge };
    const plan = planPublish(t, await virsh.network(n.name), n.active ? 'active' : 'inactive');
    if (plan.ownership.kind === 'foreign') {
      const msg = foreignMessage(n.name, plan.ownership.reason);
      this.logOnce(n.name, 'warning', msg);
      this.setStatus(n.name, `foreign: ${plan.ownership.reason}`);
      return;
    }
    const known = records.get(n.name);
    if (!known || known.uuid !== t.uuid || known.bridge !== t.bridge) {
      records.set(n.name, t);
      await this.writeRecords(records);
    }
    await this.apply(virsh, n.name, plan.steps);
    if (plan.steps.length) {
      this.o.log.info(
        `libvirt: network ${n.name} published (${plan.steps.map((s) => s.op).join(', ')}) at ${virsh.uri}`,
        { network: n.name },
      );
    }
    this.logged.delete(n.name);
    this.setStatus(n.name, 'published');
  }

  private async apply(virsh: Virsh, name: string, steps: PublishStep[]): Promise<void> {
    for (const s of steps) {
      if (s.op === 'define') await virsh.define(s.xml);
      else if (s.op === 'autostart') await virsh.setAutostart(name, true);
      else if (s.op === 'start') await virsh.start(name);
      else if (s.op === 'destroy') await virsh.destroy(name);
      else await virsh.undefine(name);
    }
  }

  private async readRecords(): Promise<Map<string, PublishTarget>> {
    let text: string;
    try {
      text = await readFile(this.o.stateFile, 'utf8');
    } catch {
      return new Map();
    }
    const out = new Map<string, PublishTarget>();
    try {
      for (const r of JSON.parse(text) as PublishTarget[]) {
        if (typeof r?.name === 'string' && typeof r.uuid === 'string' && typeof r.bridge === 'string')
          out.set(r.name, { name: r.name, uuid: r.uuid, bridge: r.bridge });
      }
    } catch (e) {
      this.o.log.warning(
        `libvirt: ${this.o.stateFile} is not readable JSON (${(e as Error).message}); starting afresh`,
      );
    }
    return out;
  }

  private writeRecords(records: Map<string, PublishTarget>): Promise<void> {
    const list = [...records.values()].sort((a, b) => a.name.localeCompare(b.name));
    return writeFileAtomic(this.o.stateFile, `${JSON.stringify(list, null, 2)}\n`, { mode: 0o644 });
  }
}
