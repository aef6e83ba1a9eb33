/**
 * The engine: brings virtual networks up and down on this host, for real.
 *
 * start(net): conflict checks first (nothing is touched when one fails), then
 *   links (one `ip -batch -`) → bridge sysctls → host sysctls → firewall (one transaction) → dnsmasq
 *   → state file. Each step registers its undo; when a step fails the undos run in reverse and the
 *   error names the step (and, for a command, its stderr).
 * stop(name): removes exactly what start added, in reverse; host sysctls go back to their previous
 *   values once no network needs them.
 * State: RUNDIR/networks/NAME.json (atomic). `adopt()` in a new process takes over what is up —
 *   dnsmasq by its pid file, rules by their table/chains — and repairs drift (rules re-applied in one
 *   transaction, dead dnsmasq restarted, missing state of a vanished bridge re-created).
 *
 * The engine runs in the network namespace it manages (the host's, or a test's "host" namespace):
 * /proc/sys, /sys/class/net and /proc/net are read directly.
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { activeLeases, readLeaseFile } from '../dnsmasq/leases.js';
import type { ProcessProbe } from '../dnsmasq/proc.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { type CommandRunner, createRunner } from '../exec/runner.js';
import { type CompatChange, CompatLayer, type SaveCache } from '../firewall/compat.js';
import { detectFirewall, type FirewallRequest, makeFirewall } from '../firewall/detect.js';
import { diagnose, type Finding } from '../firewall/doctor.js';
import { gatherDoctorFacts } from '../firewall/doctor-host.js';
import type { ZoneBinding, ZoneManager } from '../firewall/firewalld.js';
import type { Firewall, FirewallChoice } from '../firewall/types.js';
import { RulesetWatcher } from '../firewall/watch.js';
import type { Network } from '../model/network.js';
import { spanHostNetwork } from '../model/span.js';
import type { FirewallBackend, HostEntry, Lease } from '../model/values.js';
import { diffPlans } from '../plan/diff.js';
import { forgetHost, hostsCacheOf } from '../plan/dnsmasq/hosts-cache.js';
import { withLiveHost } from '../plan/dnsmasq.js';
import { compatRuleSet } from '../plan/firewall/compat.js';
import type { FirewallScripts } from '../plan/firewall/scripts.js';
import {
  defaultPlanPaths,
  firewallOf,
  type HostFacts,
  type NetworkPlan,
  planDnsmasqArgv,
  planNetwork,
  plansMacTap,
} from '../plan/index.js';
import { createsBridge, type NicState } from '../plan/links.js';
import { renderFdbBatch, type SpanPlan } from '../plan/span.js';
import type { Logger } from '../util/log.js';
import { Revert } from '../util/revert.js';
import { checkEngineConflicts, checkHostConflicts, type RunningNetwork } from './conflicts.js';
import { type HostProbe, LinuxHostProbe } from './host.js';
import {
  applySpan,
  checkFrr,
  memberHostRefusal,
  missingFloodEntries,
  readSpanPeers,
  removeSpan,
  type SpanPeer,
  spanPlanOnHost,
  spanStateOf,
} from './span.js';
import { type NetworkState, StateStore } from './state.js';
import { procSysctlIo, type SysctlIo, SysctlManager } from './sysctl.js';
import type { ActiveNetworkInfo, Engine, EngineEvents } from './types.js';
import { type Change, errText, stepError } from './units/change.js';
import { type DnsmasqSlot, DnsmasqUnit, isDnsmasqStep } from './units/dnsmasq.js';
import { FirewallUnit } from './units/firewall.js';
import { LinksUnit } from './units/links.js';
import { PortsUnit } from './units/ports.js';
import { SysctlsUnit } from './units/sysctls.js';

export interface EngineOptions {
  /** Run directory (state, dnsmasq files). Default /run/virtnet. */
  runDir?: string;
  runner?: CommandRunner;
  /** Firewall backend: 'auto' (nftables when nft works), 'nftables' or 'iptables'. */
  firewall?: FirewallRequest;
  /** Create the `<bridge>-nic` tap to pin the MAC (libvirt < 5.x). Default false. */
  macTap?: boolean;
  /** Have dnsmasq own `uk.org.thekelleys.dnsmasq.<bridge>` on the system bus (lease signals). */
  dnsmasqDbus?: boolean;
  /** How to reach FRR's vtysh for spans in mode 'evpn' (argv prefix; default `vtysh`). */
  frrVtysh?: string[];
  /** dnsmasq `--user`. */
  dnsmasqUser?: string;
  /** Extra options for the supervisor (back-off, poll interval). */
  supervisor?: { pollMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
  sysctl?: SysctlIo;
  probe?: HostProbe;
  /** How the dnsmasq supervisors see processes (tests; default /proc). */
  dnsmasqProbe?: ProcessProbe;
  /**
   * Every change to the host (links, addresses, routes, rule sets, sysctls, ports, DHCP hosts; dnsmasq
   * through its supervisor) is logged once at info, tagged `network=NAME`.
   */
  logger?: Logger;
  /**
   * Living with other firewalls (virtnetd turns it on): the compatibility layer in foreign iptables
   * chains that can drop the networks' traffic (src/plan/firewall/compat.ts), and a ruleset watcher
   * (`nft monitor`) that puts lost rules back at once, logs at warning what was missing and emits
   * `repaired`. Off by default (unit tests, the hooks' in-process fallback).
   */
  coexist?: boolean;
}

interface Active extends DnsmasqSlot {
  firewall?: Firewall;
  /** Where the compatibility layer is (`variant/family/parent`), to tell a repair from an addition. */
  compat?: Set<string>;
}

/** Where a compat change is, for the log: `iptables-nft ipv4`, or `foreign nftables chains ipv4`. */
function compatWhere(c: CompatChange): string {
  return `${c.variant === 'native' ? 'foreign nftables chains' : `iptables-${c.variant}`} ${c.family}`;
}

export class LinuxEngine implements Engine {
  private readonly events = new EventEmitter();
  private readonly active = new Map<string, Active>();
  private readonly runDir: string;
  private readonly dnsmasqDir: string;
  private readonly store: StateStore;
  private readonly sysctlIo: SysctlIo;
  private readonly sysctlUnit: SysctlsUnit;
  private readonly linksUnit: LinksUnit;
  private readonly portsUnit: PortsUnit;
  private readonly firewallUnit: FirewallUnit;
  private readonly probe: HostProbe;
  private readonly log: Logger | undefined;
  private readonly dnsmasq: DnsmasqUnit;
  /**
   * Locks: one operation at a time per network (key = name); admissions (conflict checks of a start,
   * adoption) one at a time under '*'. Order is always '*' before a name, never the reverse.
   * Different networks start and stop side by side.
   */
  private readonly tails = new Map<string, Promise<unknown>>();
  /** Networks admitted (conflict-checked) whose start is still running. */
  private readonly reserved = new Map<string, Network>();
  private compat: CompatLayer | undefined;
  private watcher: RulesetWatcher | undefined;
  private zones: ZoneManager | undefined;

  private constructor(
    private readonly runner: CommandRunner,
    private readonly firewall: Firewall,
    readonly firewallChoice: FirewallChoice,
    private readonly opts: EngineOptions,
  ) {
    this.runDir = opts.runDir ?? '/run/virtnet';
    this.dnsmasqDir = join(this.runDir, 'dnsmasq');
    this.store = new StateStore(this.runDir);
    this.sysctlIo = opts.sysctl ?? procSysctlIo();
    this.sysctlUnit = new SysctlsUnit(
      new SysctlManager(this.sysctlIo, join(this.runDir, 'sysctls.json')),
      this.sysctlIo,
    );
    this.probe = opts.probe ?? new LinuxHostProbe(runner);
    this.linksUnit = new LinksUnit(runner, this.probe, opts.logger);
    this.portsUnit = new PortsUnit(runner);
    this.firewallUnit = new FirewallUnit(opts.logger);
    this.log = opts.logger;
    this.dnsmasq = new DnsmasqUnit({
      runner,
      files: (name) => this.files(name),
      argvOf: (st) => planDnsmasqArgv(st.network, this.facts(st.network.name, st.macTap)),
      ...(opts.supervisor ? { supervisor: opts.supervisor } : {}),
      ...(opts.dnsmasqProbe ? { probe: opts.dnsmasqProbe } : {}),
      ...(opts.logger ? { logger: opts.logger } : {}),
      onLease: (e) => this.emit('lease-changed', e),
    });
  }

  /** Detect the firewall backend, prepare the run directory. */
  static async create(opts: EngineOptions = {}): Promise<LinuxEngine> {
    const runner = opts.runner ?? createRunner();
    const { firewall, choice } = await detectFirewall(runner, opts.firewall ?? 'auto');
    const e = new LinuxEngine(runner, firewall, choice, opts);
    await e.store.init();
    await mkdir(e.dnsmasqDir, { recursive: true, mode: 0o755 });
    opts.logger?.info(`firewall backend: ${choice.backend} (${choice.reason})`);
    if (opts.coexist) {
      const own = choice.backend === 'iptables' ? await CompatLayer.variantOf(runner) : undefined;
      e.compat = new CompatLayer(runner, own);
      const compat = e.compat;
      e.watcher = new RulesetWatcher({
        onChange: (why) => e.checkFirewall(why),
        // With the networks and where their layers are: the same legacy tables with other networks
        // up (a network started while they held no drop) still call for a check.
        legacyFingerprint: async () =>
          `${JSON.stringify([...e.active].map(([n, a]) => [n, [...(a.compat ?? [])]]))}\n${await compat.legacyFingerprint()}`,
        onTrouble: (m) => e.log?.warning(m),
      });
      e.watcher.start();
    }
    return e;
  }

  get firewallBackend(): FirewallBackend {
    return this.firewallChoice.backend;
  }

  private locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    const tail = next.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      // `tail` never rejects (caught above); this only forgets it
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  private emit<K extends keyof EngineEvents>(event: K, e: EngineEvents[K]): void {
    this.events.emit(event, e);
  }

  on<K extends keyof EngineEvents>(event: K, listener: (e: EngineEvents[K]) => void): void {
    this.events.on(event, listener);
  }

  off<K extends keyof EngineEvents>(event: K, listener: (e: EngineEvents[K]) => void): void {
    this.events.off(event, listener);
  }

  // --- paths -------------------------------------------------------------------------------------

  /** The dnsmasq files of a network (conf, hostsfile, addn-hosts, pid, leases). */
  private files(name: string) {
    // (leaseFilePath below names the same lease file for the libvirt import's lease carry-over)
    return defaultPlanPaths(this.dnsmasqDir, name);
  }

  /** What this engine knows of the host that changes a network's plan. */
  private facts(name: string, macTap: boolean, extraHosts: readonly HostEntry[] = []): HostFacts {
    return {
      firewall: this.firewall.backend,
      paths: this.files(name),
      macTap,
      ...(this.opts.dnsmasqDbus ? { dnsmasqDbus: true } : {}),
      ...(this.opts.dnsmasqUser ? { dnsmasqUser: this.opts.dnsmasqUser } : {}),
      extraHosts,
    };
  }

  /** The plan of a network as this engine runs it (`macTap` as recorded for a running one). */
  planOf(net: Network, macTap: boolean, extraHosts: readonly HostEntry[] = []): NetworkPlan {
    return planNetwork(net, this.facts(net.name, macTap, extraHosts));
  }

  private firewallFor(backend: FirewallBackend): Firewall {
    return backend === this.firewall.backend
      ? this.firewall
      : makeFirewall(this.runner, { backend, reason: 'recorded in the state of an adopted network' });
  }

  // --- the log: every change to the host once, at info, tagged with the network ------------------

  private note(network: string, message: string, meta: Record<string, unknown> = {}): void {
    this.log?.info(message, { network, ...meta });
  }

  /** Run a unit's step and log the changes it reports (also those made before it failed). */
  private async reported(network: string, fn: (changes: Change[]) => Promise<void>): Promise<void> {
    const changes: Change[] = [];
    try {
      await fn(changes);
    } finally {
      for (const c of changes) this.note(network, c.message, c.meta ?? {});
    }
  }

  // --- conflicts ---------------------------------------------------------------------------------

  /** Everything that would make start fail half-way, checked before anything is touched. */
  private async checkConflicts(net: Network): Promise<void> {
    this.checkEngineConflicts(net);
    await this.checkHostConflicts(net);
  }

  /** Active networks and those admitted but still starting (started side by side). */
  private running(): RunningNetwork[] {
    return [
      ...[...this.active.values()].map((a) => ({ bridge: a.state.bridge, network: a.state.network })),
      ...[...this.reserved.values()].map((n) => ({ bridge: n.bridge.name, network: n })),
    ];
  }

  private checkEngineConflicts(net: Network): void {
    checkEngineConflicts(net, this.running());
  }

  private checkHostConflicts(net: Network): Promise<void> {
    return checkHostConflicts(net, this.probe, this.sysctlIo);
  }

  // --- start -------------------------------------------------------------------------------------

  async start(net: Network): Promise<ActiveNetworkInfo> {
    await this.checkHostConflicts(net);
    await this.locked('*', async () => this.admit(net));
    try {
      return await this.locked(net.name, () => this.doStart(net, [], [], true));
    } finally {
      this.reserved.delete(net.name);
    }
  }

  /** Conflict checks, then the network is reserved: a concurrent start conflicts with it. */
  private admit(net: Network): void {
    if (this.active.has(net.name) || this.reserved.has(net.name)) {
      throw new ConflictError(`network ${net.name} is already active`);
    }
    this.checkEngineConflicts(net);
    this.reserved.set(net.name, net);
  }

  private async doStart(
    defined: Network,
    extraHosts: HostEntry[] = [],
    ports: string[] = [],
    admitted = false,
  ): Promise<ActiveNetworkInfo> {
    if (!admitted) {
      if (this.active.has(defined.name)) throw new ConflictError(`network ${defined.name} is already active`);
      await this.checkConflicts(defined);
    }
    // A spanning network: this host's role from its addresses; a member runs only a bare bridge.
    let span: SpanPlan | undefined;
    if (defined.span) {
      // EVPN: FRR is a real dependency, checked before anything changes.
      if (defined.span.mode === 'evpn') await checkFrr(this.runner, this.opts.frrVtysh ?? ['vtysh'], defined);
      try {
        span = await spanPlanOnHost(this.runner, defined);
      } catch (e) {
        throw stepError("span: this host's role", e);
      }
    }
    const net = span ? spanHostNetwork(defined, span.role) : defined;
    const br = net.bridge.name!;
    const macTap = plansMacTap(net, this.facts(net.name, Boolean(this.opts.macTap)));
    // Everything below applies this plan (what `virtnetctl plan` prints for the network).
    const plan = this.planOf(net, macTap, extraHosts);
    const scripts = firewallOf(plan);
    const state: NetworkState = {
      version: 1,
      network: net,
      bridge: br,
      createdBridge: createsBridge(net),
      macTap,
      firewall: scripts ? this.firewall.backend : 'none',
      ...(scripts ? { firewallScripts: scripts } : {}),
      dnsmasq: plan.dnsmasqConf !== null,
      ports: [...ports],
      extraHosts: [...extraHosts],
      startedAt: new Date().toISOString(),
      ...(span ? { span: spanStateOf(defined, span) } : {}),
    };
    const revert = new Revert();
    const entry: Active = { state };
    let step = 'state: record start';
    try {
      revert.add('state: remove', () => this.store.remove(net.name));
      await this.store.save({ ...state, phase: 'starting' }).catch((e) => {
        throw stepError(step, e);
      });
      // Independent chains run side by side; each registers its undo before it changes anything:
      // links ‖ firewall → host sysctls (forwarding only once the rules are in) ‖ dnsmasq files →
      // (links done) dnsmasq. dnsmasq needs its interface, not the rules: no guest can reach the
      // bridge before the network is active (ports are attached afterwards), so it starts while the
      // firewall transaction still runs instead of after it (the start's longest chain).
      const chains: Promise<void>[] = [];
      let links: Promise<void> = Promise.resolve();
      let failedChain = false; // once one chain failed, the others start nothing new
      const named = async (name: string, fn: () => Promise<void>) => {
        try {
          await fn();
        } catch (e) {
          failedChain = true;
          throw stepError(name, e);
        }
      };
      if (net.forward.mode === 'bridge' && net.bridge.enslave) {
        const nicName = net.bridge.enslave;
        links = named(`links: enslave ${nicName} to ${br}`, async () => {
          const nic = await this.probe.nicState(nicName);
          state.enslaved = nic;
          revert.add(`links: release ${nic.name}`, () => this.releaseNic(net, nic));
          await this.reported(net.name, (c) => this.linksUnit.enslave(net, nic, c));
        });
        chains.push(links);
      } else if (net.forward.mode !== 'bridge') {
        revert.add(`links: delete bridge ${br}`, () => this.deleteBridge(net, macTap));
        links = named(`links: create bridge ${br}`, () =>
          this.reported(net.name, (c) => this.linksUnit.create(net, plan.links.ops, macTap, c)),
        );
        chains.push(
          links.then(() =>
            this.reported(net.name, (c) =>
              this.sysctlUnit.bridge(`sysctls of bridge ${br}`, plan.links.bridgeSysctls, c),
            ),
          ),
        );
        if (span) {
          const sp = span;
          revert.add(`span: delete port ${sp.port}`, () => this.deleteSpanPort(net.name, sp.port));
          chains.push(
            links.then(() =>
              named(`span: VXLAN port ${sp.port}`, async () => {
                if (failedChain) return;
                await applySpan(this.runner, sp);
                this.note(
                  net.name,
                  `VXLAN port ${sp.port} (VNI ${defined.span!.vni}) added to ${br} as span ${sp.role.role}`,
                  { local: sp.role.local, remotes: sp.role.remotes },
                );
              }),
            ),
          );
        }
      }
      const host = plan.links.sysctls;
      if (scripts || host.length) {
        const fw = this.firewall;
        if (scripts) entry.firewall = fw;
        let applied = false;
        // Also after a failed apply (iptables applies per family), but only logged when it had applied.
        if (scripts)
          revert.add('firewall: remove', () =>
            applied ? this.removeRules(net.name, fw, scripts) : fw.remove(net.name, scripts),
          );
        if (host.length) revert.add('sysctls: restore', () => this.releaseSysctls(net.name));
        chains.push(
          (async () => {
            if (scripts)
              await named(`firewall (${scripts.backend})`, async () => {
                await this.reported(net.name, (c) => this.firewallUnit.up(net.name, fw, scripts, c));
                applied = true;
              });
            if (host.length)
              await named('sysctls', async () =>
                this.reported(net.name, (c) => this.sysctlUnit.up(net.name, host, c)),
              );
          })(),
        );
      }
      if (state.dnsmasq) {
        chains.push(
          (async () => {
            await named('dnsmasq: write config', () => this.dnsmasq.writeUp(entry, plan, revert));
            // dnsmasq once its interface is up (it answers as soon as start() resolves). A failed
            // links chain reports itself (it comes first in `chains`).
            await links;
            if (failedChain) return; // the failed chain reports; nothing to start then take back
            await named('dnsmasq: start', () => this.dnsmasq.startUp(entry, plan, revert));
          })(),
        );
      }
      const settled = await Promise.allSettled(chains);
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        step = (failed.reason as { step?: string }).step ?? 'start';
        throw failed.reason;
      }
      // The compatibility layer (foreign iptables chains that can drop), once the network's own rules
      // are in.
      const crs = this.compat ? compatRuleSet(net) : undefined;
      if (this.compat && crs) {
        const compat = this.compat;
        step = 'firewall: compatibility rules';
        revert.add('firewall: remove compatibility rules', () => this.removeCompat(net.name));
        this.noteCompat(net.name, entry, await compat.ensure(crs));
      }
      if (this.zones) {
        const zones = this.zones;
        step = 'firewalld: zone';
        const b = await zones.bind(net);
        if (b) {
          state.zone = b;
          revert.add('firewalld: unbind zone', () => zones.unbind(b));
          this.noteZone(net.name, b);
        }
      }
      // Ports that were attached before (update with restart).
      for (const p of state.ports) {
        step = `ports: attach ${p}`;
        await this.reported(net.name, (c) =>
          this.portsUnit.attach(br, p, c, { tolerant: true, step }).then(() => {}),
        );
      }
      step = 'state: record';
      state.phase = 'active';
      await this.store.save(state).catch((e) => {
        throw stepError(step, e);
      });
    } catch (e) {
      for (const f of await revert.fail())
        this.log?.error(`network ${net.name}: rollback step '${f.step}' failed: ${errText(f.error)}`);
      throw stepError(step, e);
    }
    revert.success();
    this.active.set(net.name, entry);
    this.note(net.name, `network ${net.name} started`, { bridge: br, firewall: state.firewall });
    this.emit('started', { name: net.name });
    return this.infoOf(state, entry);
  }

  private async deleteSpanPort(network: string, port: string): Promise<void> {
    const exists = await this.probe.linkExists(port);
    await removeSpan(this.runner, port, exists);
    if (exists) this.note(network, `VXLAN port ${port} removed`);
  }

  private async deleteBridge(net: Network, macTap: boolean): Promise<void> {
    await this.reported(net.name, (c) => this.linksUnit.deleteBridge(net, macTap, c));
  }

  private async removeRules(name: string, fw: Firewall, scripts: FirewallScripts): Promise<void> {
    await this.reported(name, (c) => this.firewallUnit.down(name, fw, scripts, c));
  }

  private async releaseSysctls(name: string): Promise<void> {
    await this.reported(name, (c) => this.sysctlUnit.down(name, c));
  }

  private async releaseNic(net: Network, nic: NicState): Promise<void> {
    await this.reported(net.name, (c) => this.linksUnit.release(net, nic, c));
  }

  // --- living with other firewalls ---------------------------------------------------------------

  /**
   * Log what the compatibility layer changed and remember where it is. Returns the changes that
   * repaired a layer that had been there (a foreign flush or restore took it), as opposed to adding
   * it where a foreign chain started to drop, or removing it where none drops any more.
   */
  private noteCompat(name: string, entry: Active, checked: CompatChange[]): string[] {
    const had = entry.compat ?? new Set<string>();
    const now = new Set<string>();
    const repaired: string[] = [];
    for (const c of checked) {
      const key = (p: string) => `${c.variant}/${c.family}/${p}`;
      for (const p of c.parents) now.add(key(p));
      if (!c.problems.length) continue;
      const where = compatWhere(c);
      const lost = c.problems.filter(
        (p) => had.has(key(p.split(':')[0]!)) && !p.endsWith('no longer needed'),
      );
      if (lost.length) repaired.push(`${where}: ${lost.join(', ')}`);
      else
        this.note(name, `firewall compatibility rules updated in ${where}: ${c.problems.join(', ')}`, {
          parents: c.parents,
        });
    }
    entry.compat = now;
    return repaired;
  }

  private noteZone(name: string, b: ZoneBinding, why?: string): void {
    if (b.ours)
      this.note(name, `firewalld: bridge ${b.ifname} put into zone ${b.zone}${why ? ` (${why})` : ''}`);
  }

  async useFirewallZones(zones: ZoneManager): Promise<void> {
    this.zones = zones;
    await zones.watch((why) => void this.rebindZones(why));
    await this.rebindZones('firewalld zones enabled');
  }

  /**
   * Every active network's bridge into its zone again (after firewalld reloaded or restarted, its
   * runtime bindings are gone), then the rules checked (firewalld's iptables backend flushes
   * everyone's on reload).
   */
  async rebindZones(why: string): Promise<void> {
    const zones = this.zones;
    if (!zones) return;
    await this.eachActiveLocked('firewalld zone', async (name, { state }) => {
      const b = await zones.bind(state.network, state.zone);
      if (JSON.stringify(b) === JSON.stringify(state.zone)) return;
      if (b) {
        state.zone = b;
        this.noteZone(name, b, why);
      } else delete state.zone;
      await this.store.save(state);
    });
    await this.checkFirewall(why);
  }

  /** What on this host blocks or could block the network's traffic (`virtnetctl doctor`). */
  async doctor(name: string): Promise<Finding[]> {
    const entry = this.active.get(name);
    if (!entry) throw new NotFoundError(`network ${name} is not active`);
    // Without the coexistence layer (unit tests, hooks' fallback) the iptables variants are still read.
    const compat = this.compat ?? new CompatLayer(this.runner, undefined);
    const pid = entry.supervisor?.pid;
    const facts = await gatherDoctorFacts({
      runner: this.runner,
      net: entry.state.network,
      compat,
      ...(this.zones ? { zones: this.zones } : {}),
      ...(entry.state.zone ? { binding: entry.state.zone } : {}),
      ...(pid ? { dnsmasqPid: pid } : {}),
    });
    return diagnose(facts);
  }

  private async removeCompat(name: string): Promise<void> {
    const changes = await this.compat!.remove(name);
    for (const c of changes.filter((x) => x.problems.length))
      this.note(name, `firewall compatibility rules removed from ${compatWhere(c)}`);
  }

  /**
   * The watcher's check: for every active network (under its lock, so never in the middle of its
   * start, update or stop), its own rules — re-applied when not all there — and the compatibility
   * layer, made as planned. A repair is logged once at warning with what was missing, and emitted.
   */
  async checkFirewall(why = 'check'): Promise<void> {
    const saves: SaveCache = new Map();
    await this.eachActiveLocked('firewall repair', async (name, entry) => {
      const { state } = entry;
      const missing: string[] = [];
      if (state.firewallScripts) {
        const fw = entry.firewall ?? this.firewallFor(state.firewallScripts.backend);
        const found = await fw.present(name, state.firewallScripts);
        if (found !== 'present') {
          await fw.repair(name, state.firewallScripts);
          missing.push(`own ${state.firewallScripts.backend} rules ${found}`);
        }
      }
      const crs = this.compat ? compatRuleSet(state.network) : undefined;
      if (this.compat && crs)
        missing.push(...this.noteCompat(name, entry, await this.compat.ensure(crs, saves)));
      if (missing.length) {
        this.log?.warning(`network ${name}: firewall rules repaired (${why}): ${missing.join('; ')}`, {
          network: name,
        });
        this.emit('repaired', { name, missing });
      }
    });
  }

  /**
   * `fn` for every active network in turn, under '*' and its own lock (adoption, which holds '*',
   * starts and stops networks without their own lock; so never in the middle of a start, update,
   * stop or adoption). A failure is logged as `what` failing for that network; the others still run.
   */
  private async eachActiveLocked(
    what: string,
    fn: (name: string, entry: NonNullable<ReturnType<typeof this.active.get>>) => Promise<void>,
  ): Promise<void> {
    for (const name of [...this.active.keys()]) {
      await this.locked('*', () =>
        this.locked(name, async () => {
          const entry = this.active.get(name);
          if (entry) await fn(name, entry);
        }),
      ).catch((e) => this.log?.error(`network ${name}: ${what} failed: ${errText(e)}`, { network: name }));
    }
  }

  // --- stop --------------------------------------------------------------------------------------

  stop(name: string): Promise<void> {
    return this.locked(name, () => this.doStop(name));
  }

  private async doStop(name: string): Promise<void> {
    const entry = this.active.get(name);
    if (!entry) throw new NotFoundError(`network ${name} is not active`);
    const { state } = entry;
    const net = state.network;
    const errors: string[] = [];
    const attempt = async (step: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${step}: ${errText(e)}`);
      }
    };
    // Three independent chains, side by side: dnsmasq; rules then host sysctls; links.
    const dnsmasqChain = () => this.dnsmasq.down(entry, attempt);
    const firewallChain = async () => {
      if (state.firewallScripts) {
        const fw = entry.firewall ?? this.firewallFor(state.firewallScripts.backend);
        const scripts = state.firewallScripts;
        await attempt('firewall: remove', () => this.removeRules(name, fw, scripts));
      }
      if (this.compat) await attempt('firewall: remove compatibility rules', () => this.removeCompat(name));
      const zone = state.zone;
      if (zone && this.zones) {
        const zones = this.zones;
        await attempt('firewalld: unbind zone', async () => {
          await zones.unbind(zone);
          if (zone.ours) this.note(name, `firewalld: bridge ${zone.ifname} taken out of zone ${zone.zone}`);
        });
      }
      await attempt('sysctls: restore', () => this.releaseSysctls(name));
    };
    const linksChain = async () => {
      if (state.span) {
        const port = state.span.port;
        await attempt(`span: delete port ${port}`, () => this.deleteSpanPort(name, port));
      }
      if (state.enslaved) {
        const nic = state.enslaved;
        await attempt(`links: release ${nic.name}`, () => this.releaseNic(net, nic));
      } else if (state.createdBridge) {
        await attempt(`links: delete bridge ${state.bridge}`, () =>
          this.reported(name, (c) => this.linksUnit.down(state, c)),
        );
      } else {
        for (const p of state.ports) {
          await attempt(`ports: detach ${p}`, () =>
            this.reported(name, (c) =>
              this.portsUnit
                .detach(state.bridge, p, c, { tolerant: true, step: `ports: detach ${p}` })
                .then(() => {}),
            ),
          );
        }
      }
    };
    await Promise.all([dnsmasqChain(), firewallChain(), linksChain()]);
    await attempt('state: remove', () => this.store.remove(name));
    this.active.delete(name);
    this.emit('stopped', { name });
    this.note(name, `network ${name} stopped`);
    if (errors.length) throw new Error(`network ${name}: stop finished with errors: ${errors.join('; ')}`);
  }

  // --- adopt -------------------------------------------------------------------------------------

  adopt(defined: Network[] = []): Promise<void> {
    return this.locked('*', () => this.doAdopt(defined));
  }

  private async doAdopt(defined: Network[]): Promise<void> {
    const wanted = new Map(defined.map((n) => [n.name, n]));
    for (const state of await this.store.loadAll()) {
      const name = state.network.name;
      if (this.active.has(name)) continue;
      const entry: Active = { state };
      try {
        // A start that never finished (the process died in it): undo whatever it did.
        if (state.phase === 'starting') {
          this.log?.warning(`network ${name}: found a start that did not finish; removing what it did`);
          this.active.set(name, entry);
          await this.doStop(name).catch((e) => this.log?.warning(errText(e)));
          continue;
        }
        // The bridge vanished: nothing to adopt; clean the rest and start again from the definition.
        if (state.createdBridge && !(await this.probe.linkExists(state.bridge))) {
          this.log?.warning(`network ${name}: bridge ${state.bridge} is gone; starting the network again`);
          this.active.set(name, entry);
          await this.doStop(name).catch((e) => this.log?.warning(errText(e)));
          await this.doStart(wanted.get(name) ?? state.network, state.extraHosts, []);
          continue;
        }
        if (state.firewallScripts) {
          const fw = this.firewallFor(state.firewallScripts.backend);
          entry.firewall = fw;
          await this.firewallUnit.adopt(name, fw, state.firewallScripts);
        }
        if (state.span) await this.repairSpan(state);
        const crs = this.compat ? compatRuleSet(state.network) : undefined;
        if (this.compat && crs) this.noteCompat(name, entry, await this.compat.ensure(crs));
        if (this.zones) {
          const b = await this.zones.bind(state.network, state.zone);
          if (JSON.stringify(b) !== JSON.stringify(state.zone)) {
            if (b) {
              state.zone = b;
              this.noteZone(name, b);
            } else delete state.zone;
            await this.store.save(state);
          }
        }
        const plan = this.planOf(state.network, state.macTap, state.extraHosts);
        const host = plan.links.sysctls;
        if (host.length) await this.reported(name, (c) => this.sysctlUnit.up(name, host, c));
        if (state.dnsmasq) await this.dnsmasq.adopt(entry, plan);
        this.active.set(name, entry);
        this.note(name, `network ${name} adopted`);
      } catch (e) {
        this.log?.error(`network ${name}: adoption failed: ${errText(e)}`);
        throw stepError(`adopt ${name}`, e);
      }
    }
  }

  /** Adoption: the VXLAN port re-created when it vanished, missing flood entries put back. */
  private async repairSpan(state: NetworkState): Promise<void> {
    const sp = state.span!;
    const name = state.network.name;
    if (!(await this.probe.linkExists(sp.port))) {
      this.log?.warning(`network ${name}: VXLAN port ${sp.port} is gone; re-created`);
      const plan = await spanPlanOnHost(this.runner, state.network);
      await applySpan(this.runner, plan);
      this.note(name, `VXLAN port ${sp.port} added to ${state.bridge} as span ${plan.role.role}`);
      return;
    }
    const missing = await missingFloodEntries(this.runner, sp);
    if (missing.length > 0) {
      this.log?.warning(`network ${name}: flood list of ${sp.port} lacked ${missing.join(', ')}; repaired`);
      await this.runner.run({
        step: `span: flood list of ${sp.port}`,
        argv: ['bridge', '-batch', '-'],
        input: renderFdbBatch(missing.map((dst) => ({ kind: 'fdb-flood', dev: sp.port, dst }))),
      });
    }
  }

  // --- live changes ------------------------------------------------------------------------------

  private need(name: string): Active {
    const e = this.active.get(name);
    if (!e) throw new NotFoundError(`network ${name} is not active`);
    return e;
  }

  /** The other hosts of a running spanning network: reachability and the MACs behind each. */
  async spanPeers(name: string): Promise<SpanPeer[]> {
    const span = this.need(name).state.span;
    if (!span) return [];
    return readSpanPeers(this.runner, this.opts.frrVtysh ?? ['vtysh'], span);
  }

  addHost(name: string, host: HostEntry): Promise<void> {
    return this.locked(name, async () => {
      const entry = this.need(name);
      const st = entry.state;
      // A span member serves no DHCP or DNS: a reservation here would be silently without effect.
      const refused = memberHostRefusal(name, st.span);
      if (refused) throw refused;
      // Checked (a bad field named, an address taken refused) before anything is written.
      const { entry: entryHost, hosts } = withLiveHost(name, st.extraHosts, host);
      const before = st.extraHosts;
      st.extraHosts = hosts;
      await this.hostsChangedOrUndo(entry, entryHost, before);
      this.note(name, `host ${entryHost.mac ?? entryHost.hostname ?? ''} added`, {
        ...(entryHost.ip ? { ip: entryHost.ip } : {}),
        ...(entryHost.hostname ? { hostname: entryHost.hostname } : {}),
      });
    });
  }

  removeHost(name: string, mac: string): Promise<void> {
    return this.locked(name, async () => {
      const entry = this.need(name);
      const key = mac.toLowerCase();
      const gone = entry.state.extraHosts.find((h) => h.mac?.toLowerCase() === key);
      if (!gone) throw new NotFoundError(`network ${name}: no live host ${mac}`);
      const before = entry.state.extraHosts;
      entry.state.extraHosts = entry.state.extraHosts.filter((h) => h !== gone);
      if (entry.hosts) forgetHost(entry.hosts, gone);
      await this.hostsChangedOrUndo(entry, gone, before);
      this.note(name, `host ${mac.toLowerCase()} removed`);
    });
  }

  /**
   * hostsChanged, and when it fails (disk full, dnsmasq gone…) the in-memory reservations go back to
   * `before` — a change reported as failed must not reappear with the next one — and the host files
   * are put back as far as possible (best effort; adoption repairs them otherwise).
   */
  private async hostsChangedOrUndo(entry: Active, changed: HostEntry, before: HostEntry[]): Promise<void> {
    try {
      await this.hostsChanged(entry, changed);
    } catch (e) {
      entry.state.extraHosts = before;
      if (entry.state.dnsmasq && entry.supervisor)
        await this.dnsmasq.restoreHosts(entry, this.planOf(entry.state.network, entry.state.macTap, before));
      throw e;
    }
  }

  /** Hostsfile (and addn-hosts when a DNS-only entry changed) rewritten atomically + SIGHUP. No firewall change. */
  private async hostsChanged(entry: Active, changed: HostEntry): Promise<void> {
    const st = entry.state;
    await this.dnsmasq.hostsChanged(entry, changed);
    await this.store.saveLive(st);
    this.emit('updated', { name: st.network.name });
  }

  async leases(name: string): Promise<Lease[]> {
    const entry = this.need(name);
    if (!entry.state.dnsmasq) return [];
    return activeLeases(await readLeaseFile(this.files(name).leases));
  }

  attachPort(name: string, ifname: string, meta: { mac?: string; domain?: string } = {}): Promise<void> {
    return this.locked(name, async () => {
      const entry = this.need(name);
      const st = entry.state;
      await this.reported(name, (c) =>
        this.portsUnit
          .attach(st.bridge, ifname, c, meta.domain ? { meta: { domain: meta.domain } } : {})
          .then(() => {}),
      );
      if (!st.ports.includes(ifname)) st.ports.push(ifname);
      await this.store.saveLive(st);
      this.emit('port-attached', { name, ifname, mac: meta.mac ?? '', domain: meta.domain ?? '' });
    });
  }

  detachPort(name: string, ifname: string, meta: { domain?: string } = {}): Promise<void> {
    return this.locked(name, async () => {
      const entry = this.need(name);
      const st = entry.state;
      if ((await this.probe.masterOf(ifname)) === st.bridge) {
        await this.reported(name, (c) =>
          this.portsUnit
            .detach(st.bridge, ifname, c, meta.domain ? { meta: { domain: meta.domain } } : {})
            .then(() => {}),
        );
      }
      st.ports = st.ports.filter((p) => p !== ifname);
      await this.store.saveLive(st);
      this.emit('port-detached', { name, ifname, domain: meta.domain ?? '' });
    });
  }

  // --- update ------------------------------------------------------------------------------------

  update(net: Network): Promise<void> {
    return this.locked(net.name, () => this.doUpdate(net));
  }

  /** The plan of a running network: the firewall for the backend its rules were installed with. */
  private runningPlan(st: NetworkState): NetworkPlan {
    const facts = this.facts(st.network.name, st.macTap, st.extraHosts);
    return planNetwork(st.network, { ...facts, firewall: st.firewallScripts?.backend ?? facts.firewall });
  }

  /** A live update: the steps diffPlans finds between the running plan and the new one, applied in order. */
  private async doUpdate(net: Network): Promise<void> {
    const entry = this.need(net.name);
    const st = entry.state;
    const plan = this.planOf(net, st.macTap, st.extraHosts);
    const steps = diffPlans({ network: st.network, plan: this.runningPlan(st) }, { network: net, plan });
    if (steps[0]?.kind === 'restart') {
      const { extraHosts, ports } = st;
      await this.doStop(net.name);
      await this.doStart(net, extraHosts, ports);
      this.emit('updated', { name: net.name });
      return;
    }
    const br = st.bridge;
    for (const step of steps) {
      switch (step.kind) {
        case 'links':
          await this.reported(net.name, (c) => this.linksUnit.update(br, step.ops, c));
          break;
        case 'bridge-sysctls':
          await this.reported(net.name, (c) =>
            this.sysctlUnit.bridge(`sysctls of bridge ${br}`, step.sysctls, c, true),
          );
          break;
        case 'host-sysctls':
          // Claim what the new definition needs, release what only the old one did.
          await this.reported(net.name, (c) => this.sysctlUnit.update(net.name, step.sysctls, c));
          break;
        case 'firewall':
          await this.reported(net.name, (c) =>
            this.firewallUnit.update(
              net.name,
              step,
              {
                old: entry.firewall ?? this.firewallFor(step.remove?.backend ?? this.firewall.backend),
                next: this.firewall,
              },
              c,
            ),
          );
          if (step.apply) {
            entry.firewall = this.firewall;
            st.firewallScripts = step.apply;
            st.firewall = step.apply.backend;
          } else {
            delete st.firewallScripts;
            st.firewall = 'none';
          }
          break;
        default:
          break; // dnsmasq steps: below, once the coexistence parts follow the new definition
      }
    }
    await this.followCoexistence(net, entry);
    st.network = net;
    st.dnsmasq = plan.dnsmasqConf !== null;
    entry.hosts = st.dnsmasq ? hostsCacheOf(net) : undefined;
    for (const step of steps) {
      if (isDnsmasqStep(step)) await this.dnsmasq.update(entry, step);
    }
    await this.store.save(st);
    this.emit('updated', { name: net.name });
  }

  /** firewalld's zone and the compatibility layer follow a changed definition (subnets, bridge, mode). */
  private async followCoexistence(net: Network, entry: Active): Promise<void> {
    const st = entry.state;
    if (this.zones) {
      const b = await this.zones.bind(net, st.zone);
      if (b) {
        if (JSON.stringify(b) !== JSON.stringify(st.zone)) this.noteZone(net.name, b);
        st.zone = b;
      } else if (st.zone) {
        await this.zones.unbind(st.zone);
        delete st.zone;
      }
    }
    if (this.compat) {
      const crs = compatRuleSet(net);
      if (crs) this.noteCompat(net.name, entry, await this.compat.ensure(crs));
      else if (entry.compat?.size) {
        await this.removeCompat(net.name);
        entry.compat.clear();
      }
    }
  }

  // --- queries -----------------------------------------------------------------------------------

  isActive(name: string): boolean {
    return this.active.has(name);
  }

  private infoOf(st: NetworkState, entry: Active): ActiveNetworkInfo {
    return {
      name: st.network.name,
      bridge: st.bridge,
      firewall: st.firewall,
      ...(entry.supervisor?.pid !== undefined ? { dnsmasqPid: entry.supervisor.pid } : {}),
      ports: [...st.ports],
      extraHosts: st.extraHosts.map((h) => ({ ...h })),
      startedAt: st.startedAt,
      ...(st.span ? { span: { ...st.span, remotes: [...st.span.remotes] } } : {}),
    };
  }

  info(name: string): ActiveNetworkInfo | undefined {
    const e = this.active.get(name);
    return e ? this.infoOf(e.state, e) : undefined;
  }

  list(): ActiveNetworkInfo[] {
    return [...this.active.values()].map((e) => this.infoOf(e.state, e));
  }

  /** Stop supervising; networks stay up (dnsmasq keeps running, rules and links stay). */
  async close(): Promise<void> {
    await this.watcher?.close();
    this.zones?.close();
    await Promise.all([...this.tails.values()]);
    for (const e of this.active.values()) {
      e.supervisor?.detach();
      e.leaseWatch?.stop();
    }
    this.active.clear();
  }
}

/** The dnsmasq lease file of network `name` under the engine's run dir. */
export function leaseFilePath(runDir: string, name: string): string {
  return join(runDir, 'dnsmasq', `${name}.leases`);
}
