/**
 * The dnsmasq unit: a network's dnsmasq files, process and lease watch, applied from its plan.
 * up (files, then the process once the links are up) / down / adopt / update (diffPlans' dnsmasq
 * steps) / hosts (a live reservation: the incremental hostsfile + SIGHUP). Each step of `up`
 * registers its undo on the start's Revert. The supervisor logs the process's own changes.
 */
import { readFile, rm } from 'node:fs/promises';
import { LeaseFileWatcher } from '../../dnsmasq/lease-watch.js';
import type { ProcessProbe } from '../../dnsmasq/proc.js';
import { DnsmasqSupervisor } from '../../dnsmasq/supervisor.js';
import type { CommandRunner } from '../../exec/runner.js';
import type { HostEntry } from '../../model/values.js';
import type { UpdateStep } from '../../plan/diff.js';
import { cachedHostsfile, type HostsCache, hostsCacheOf } from '../../plan/dnsmasq/hosts-cache.js';
import { renderAddnhosts } from '../../plan/dnsmasq.js';
import type { NetworkPlan, PlanPaths } from '../../plan/index.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import type { Logger } from '../../util/log.js';
import type { Revert } from '../../util/revert.js';
import type { NetworkState } from '../state.js';
import type { EngineEvents } from '../types.js';

/** What the unit keeps of one running network. */
export interface DnsmasqSlot {
  state: NetworkState;
  supervisor?: DnsmasqSupervisor;
  leaseWatch?: LeaseFileWatcher;
  /** The hostsfile's incremental cache (AddHost renders one line, not the whole file). */
  hosts?: HostsCache;
}

export interface DnsmasqUnitOptions {
  runner: CommandRunner;
  /** The dnsmasq files of a network. */
  files: (name: string) => PlanPaths;
  /** dnsmasq's command line for a running network whose plan is not at hand (stop of an adopted one). */
  argvOf: (state: NetworkState) => string[];
  supervisor?: { pollMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
  probe?: ProcessProbe;
  logger?: Logger;
  onLease: (e: EngineEvents['lease-changed']) => void;
}

export type DnsmasqStep = Extract<UpdateStep, { kind: `dnsmasq-${string}` }>;

export function isDnsmasqStep(step: UpdateStep): step is DnsmasqStep {
  return step.kind.startsWith('dnsmasq-');
}

export class DnsmasqUnit {
  constructor(private readonly o: DnsmasqUnitOptions) {}

  private supervisorFor(state: NetworkState, argv?: readonly string[]): DnsmasqSupervisor {
    const f = this.o.files(state.network.name);
    const s = new DnsmasqSupervisor({
      name: state.network.name,
      confFile: f.conf,
      pidFile: f.pid,
      leaseFile: f.leases,
      argv: argv ?? this.o.argvOf(state),
      runner: this.o.runner,
      ...(this.o.supervisor?.pollMs ? { pollMs: this.o.supervisor.pollMs } : {}),
      ...(this.o.supervisor?.backoff ? { backoff: this.o.supervisor.backoff } : {}),
      ...(this.o.probe ? { probe: this.o.probe } : {}),
      ...(this.o.logger ? { logger: this.o.logger } : {}),
    });
    s.on('restart-failed', (e) =>
      this.o.logger?.warning(`dnsmasq of ${e.name} failed to restart: ${e.error.message}`),
    );
    return s;
  }

  /** Lease changes from dnsmasq's lease file become 'lease-changed' events. */
  private async watchLeases(slot: DnsmasqSlot): Promise<void> {
    if (slot.leaseWatch) return;
    const name = slot.state.network.name;
    const w = new LeaseFileWatcher(this.o.files(name).leases);
    slot.leaseWatch = w;
    w.on('lease-changed', (c) => this.o.onLease({ name, ...c }));
    w.on('error', (e) => this.o.logger?.warning(`network ${name}: lease file: ${e.message}`));
    await w.start();
  }

  /** The plan's dnsmasq files written atomically (the config only when given). */
  private async writeFiles(
    name: string,
    texts: { conf?: string | null; hostsfile: string; addnhosts?: string },
  ): Promise<void> {
    const f = this.o.files(name);
    const o = { noSync: true } as const;
    const writes: Promise<void>[] = [];
    if (texts.conf) writes.push(writeFileAtomic(f.conf, texts.conf, o));
    writes.push(writeFileAtomic(f.hostsfile, texts.hostsfile, o));
    if (texts.addnhosts !== undefined) writes.push(writeFileAtomic(f.addnhosts, texts.addnhosts, o));
    await Promise.all(writes);
  }

  private async removeFiles(name: string): Promise<void> {
    const f = this.o.files(name);
    await Promise.all([f.conf, f.hostsfile, f.addnhosts, f.pid].map((p) => rm(p, { force: true })));
  }

  /** Do the hostsfile / addn-hosts on disk differ from the plan? */
  private async filesStale(plan: NetworkPlan): Promise<boolean> {
    const read = (p: string) => readFile(p, 'utf8').catch(() => undefined);
    const [hosts, addn] = await Promise.all([read(plan.paths.hostsfile), read(plan.paths.addnhosts)]);
    return hosts !== plan.hostsfile || addn !== plan.addnhosts;
  }

  /** up, first half: the plan's files (they need no interface). */
  async writeUp(slot: DnsmasqSlot, plan: NetworkPlan, revert: Revert): Promise<void> {
    const name = slot.state.network.name;
    slot.hosts = hostsCacheOf(slot.state.network);
    revert.add('dnsmasq: remove files', () => this.removeFiles(name));
    await this.writeFiles(name, {
      conf: plan.dnsmasqConf,
      hostsfile: plan.hostsfile,
      addnhosts: plan.addnhosts,
    });
  }

  /** up, second half: the process with the plan's command line, once its interface is up. */
  async startUp(slot: DnsmasqSlot, plan: NetworkPlan, revert: Revert): Promise<void> {
    const sup = this.supervisorFor(slot.state, plan.dnsmasqArgv ?? undefined);
    slot.supervisor = sup;
    revert.add('dnsmasq: stop', () => sup.stop());
    await sup.start();
    revert.add('leases: stop watching', () => slot.leaseWatch?.stop());
    await this.watchLeases(slot);
  }

  /** The process stopped (also one this process never supervised), its files removed. */
  async down(
    slot: DnsmasqSlot,
    attempt: (step: string, fn: () => Promise<void>) => Promise<void>,
  ): Promise<void> {
    slot.leaseWatch?.stop();
    if (!slot.state.dnsmasq) return;
    const sup = slot.supervisor ?? this.supervisorFor(slot.state);
    await attempt('dnsmasq: stop', () => sup.stop());
    await attempt('dnsmasq: remove files', () => this.removeFiles(slot.state.network.name));
  }

  /** Take over a running dnsmasq by its pid file; start it when dead, fix host files that drifted. */
  async adopt(slot: DnsmasqSlot, plan: NetworkPlan): Promise<void> {
    const name = slot.state.network.name;
    const sup = this.supervisorFor(slot.state, plan.dnsmasqArgv ?? undefined);
    slot.supervisor = sup;
    if (!(await sup.adopt())) {
      this.o.logger?.warning(`network ${name}: dnsmasq not running; starting it`);
      await this.writeFiles(name, {
        conf: plan.dnsmasqConf,
        hostsfile: plan.hostsfile,
        addnhosts: plan.addnhosts,
      });
      await sup.start();
    } else if (await this.filesStale(plan)) {
      // A host change was interrupted between writing the files and recording the state: the
      // recorded reservations are the truth (only those were acknowledged).
      this.o.logger?.warning(`network ${name}: host files differ from the recorded reservations; rewritten`);
      await this.writeFiles(name, { hostsfile: plan.hostsfile, addnhosts: plan.addnhosts });
      await sup.reload();
    }
    await this.watchLeases(slot);
  }

  /** One of diffPlans' dnsmasq steps. */
  async update(slot: DnsmasqSlot, step: DnsmasqStep): Promise<void> {
    const name = slot.state.network.name;
    switch (step.kind) {
      case 'dnsmasq-stop':
        slot.leaseWatch?.stop();
        delete slot.leaseWatch;
        await slot.supervisor?.stop();
        delete slot.supervisor;
        await this.removeFiles(name);
        return;
      case 'dnsmasq-start':
      case 'dnsmasq-restart':
        await this.writeFiles(name, step);
        if (slot.supervisor) slot.supervisor.setArgv(step.argv);
        else slot.supervisor = this.supervisorFor(slot.state, step.argv);
        if (step.kind === 'dnsmasq-restart') await slot.supervisor.restart();
        else await slot.supervisor.start();
        await this.watchLeases(slot);
        return;
      case 'dnsmasq-reload':
        await this.writeFiles(name, step);
        await slot.supervisor?.reload();
        return;
    }
  }

  /**
   * A live reservation changed: the hostsfile from the incremental cache (addn-hosts too when a
   * DNS-only entry changed), then SIGHUP. Nothing when the network runs no dnsmasq.
   */
  async hostsChanged(slot: DnsmasqSlot, changed: HostEntry): Promise<void> {
    const st = slot.state;
    if (!st.dnsmasq || !slot.supervisor) return;
    slot.hosts ??= hostsCacheOf(st.network);
    await this.writeFiles(st.network.name, {
      hostsfile: cachedHostsfile(slot.hosts, st.extraHosts),
      ...(changed.mac ? {} : { addnhosts: renderAddnhosts(st.network, st.extraHosts) }),
    });
    await slot.supervisor.reload();
  }

  /** Best effort after a failed host change: the files of `plan` back, SIGHUP. */
  async restoreHosts(slot: DnsmasqSlot, plan: NetworkPlan): Promise<void> {
    const sup = slot.supervisor;
    if (!slot.state.dnsmasq || !sup) return;
    await this.writeFiles(slot.state.network.name, { hostsfile: plan.hostsfile, addnhosts: plan.addnhosts })
      .then(() => sup.reload())
      .catch(() => {});
  }
}
