/**
 * Supervises the dnsmasq of one network.
 *
 * - dnsmasq daemonizes itself (as under libvirt): its first process exits only after the daemon wrote
 *   the pid file and bound its sockets, so "start command exited 0, then read the pid file" means
 *   serving. The daemon is not our child and is in its own session: it keeps running when the
 *   supervisor's process exits (the network stays up, like libvirt's KillMode=process).
 * - Liveness is polled from /proc (state and start time, so a zombie or a reused pid counts as dead).
 *   When it dies it is restarted with exponential back-off; events tell the owner.
 * - `reload()` sends SIGHUP (dnsmasq re-reads dhcp-hostsfile and addn-hosts only);
 *   `restart()` is for a changed config. `adopt()` takes over a running dnsmasq found by its pid file
 *   after verifying /proc/PID/cmdline is dnsmasq with our conf file. `stop()` kills and waits.
 *
 * The constructor does nothing; every effect is in an explicit call.
 */
import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import { CommandError } from '../errors.js';
import { type CommandRunner, createRunner } from '../exec/runner.js';
import { type DnsmasqArgvOptions, dnsmasqArgv } from '../plan/dnsmasq.js';
import type { Logger } from '../util/log.js';
import { type InotifyGuard, sharedInotifyGuard } from './inotify.js';
import { isDnsmasqWithConf, type ProcessProbe, realProbe } from './proc.js';

export interface BackoffOptions {
  /** Delay before the 2nd consecutive restart (the 1st is immediate). Default 100 ms. */
  initialMs: number;
  /** Multiplier per further consecutive failure. Default 2. */
  factor: number;
  /** Upper bound of the delay. Default 30 s. */
  maxMs: number;
  /** A dnsmasq that ran at least this long resets the back-off. Default 10 s. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 100,
  factor: 2,
  maxMs: 30_000,
  resetAfterMs: 10_000,
};

/** Delay before restart attempt `n` (0-based count of consecutive quick failures). */
export function backoffDelay(n: number, b: BackoffOptions = DEFAULT_BACKOFF): number {
  if (n <= 0) return 0;
  return Math.min(b.maxMs, b.initialMs * b.factor ** (n - 1));
}

export interface DnsmasqSupervisorOptions {
  /** Network name (logs, events, error steps). */
  name: string;
  confFile: string;
  pidFile: string;
  /** dnsmasq's own lease file (`--dhcp-leasefile`); needed when argv is built here. */
  leaseFile?: string;
  /**
   * The full command (argv[0] is dnsmasq). Default: `dnsmasqArgv({ confFile, pidFile, leaseFile, ...argvOptions })`.
   * Must let dnsmasq daemonize (no --keep-in-foreground / --no-daemon / -k / -d).
   */
  argv?: readonly string[];
  /** Extra options for dnsmasqArgv when argv is not given (dbusName, user, binary). */
  argvOptions?: Partial<Omit<DnsmasqArgvOptions, 'confFile' | 'pidFile' | 'leaseFile' | 'foreground'>>;
  /** Run dnsmasq inside this network namespace (test harnesses; the engine leaves it unset). */
  netns?: string;
  runner?: CommandRunner;
  probe?: ProcessProbe;
  backoff?: Partial<BackoffOptions>;
  /** Liveness poll interval (default 100 ms). */
  pollMs?: number;
  /** How long start() waits for the pid file after the start command exited (default 5 s). */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL (default 2 s). */
  stopTimeoutMs?: number;
  logger?: Logger;
  /** Headroom check for dnsmasq's inotify instance before each start (default: the process-wide guard). */
  inotify?: Pick<InotifyGuard, 'check'>;
}

export type SupervisorState =
  | 'idle'
  | 'starting'
  | 'running'
  | 'restarting'
  | 'stopping'
  | 'stopped'
  | 'detached';

export interface DnsmasqSupervisorEvents {
  started: [{ name: string; pid: number; ms: number }];
  adopted: [{ name: string; pid: number }];
  /** The process was found dead (not by our stop()). */
  died: [{ name: string; pid: number; uptimeMs: number }];
  restarted: [{ name: string; pid: number; attempt: number; ms: number }];
  'restart-failed': [{ name: string; attempt: number; error: Error; retryInMs: number }];
  reloaded: [{ name: string; pid: number }];
  stopped: [{ name: string; pid?: number }];
}

const FOREGROUND_FLAGS = new Set(['--keep-in-foreground', '-k', '--no-daemon', '-d']);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class DnsmasqSupervisor extends EventEmitter<DnsmasqSupervisorEvents> {
  readonly name: string;
  readonly confFile: string;
  readonly pidFile: string;
  private argvValue: string[];
  private readonly runner: CommandRunner;
  private readonly probe: ProcessProbe;
  private readonly inotify: Pick<InotifyGuard, 'check'>;
  private readonly backoff: BackoffOptions;
  private readonly pollMs: number;
  private readonly startTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly netns: string | undefined;
  private readonly log: Logger | undefined;

  private pidValue: number | undefined;
  private startTime: number | undefined;
  private startedAt = 0;
  private stateValue: SupervisorState = 'idle';
  private pollTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  /** Serializes start/stop/restart/adopt so they never interleave. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: DnsmasqSupervisorOptions) {
    super();
    this.name = opts.name;
    this.confFile = opts.confFile;
    this.pidFile = opts.pidFile;
    this.argvValue = opts.argv
      ? [...opts.argv]
      : dnsmasqArgv({
          ...opts.argvOptions,
          confFile: opts.confFile,
          pidFile: opts.pidFile,
          leaseFile: requireLeaseFile(opts),
        });
    checkArgv(this.argvValue);
    this.runner = opts.runner ?? createRunner();
    this.probe = opts.probe ?? realProbe;
    this.inotify = opts.inotify ?? sharedInotifyGuard;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.pollMs = opts.pollMs ?? 100;
    this.startTimeoutMs = opts.startTimeoutMs ?? 5000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 2000;
    this.netns = opts.netns;
    this.log = opts.logger;
  }

  /** The dnsmasq pid while supervised. */
  get pid(): number | undefined {
    return this.pidValue;
  }

  get state(): SupervisorState {
    return this.stateValue;
  }

  get argv(): readonly string[] {
    return this.argvValue;
  }

  /** Replace the command used by the next start/restart. */
  setArgv(argv: readonly string[]): void {
    checkArgv(argv);
    this.argvValue = [...argv];
  }

  /** True when the supervised pid is alive (not a zombie) and still the same process. */
  isAlive(): boolean {
    const pid = this.pidValue;
    if (pid === undefined) return false;
    const st = this.probe.stat(pid);
    return st !== undefined && st.state !== 'Z' && st.state !== 'X' && st.startTime === this.startTime;
  }

  /**
   * Start dnsmasq and supervise it; resolves with its pid once it is serving. A dnsmasq of ours left
   * running from before (found by pid file + cmdline) is stopped first, so the new config applies.
   * Already running under this supervisor: returns its pid.
   */
  start(): Promise<number> {
    return this.serialize(() => this.doStart('dnsmasq started'));
  }

  private async doStart(logAs: string): Promise<number> {
    if (this.stateValue === 'running' && this.isAlive()) return this.pidValue!;
    this.stateValue = 'starting';
    try {
      const stale = await this.findOurs();
      if (stale !== undefined) await this.killAndWait(stale);
      const t0 = performance.now();
      const pid = await this.spawnDaemon();
      const ms = performance.now() - t0;
      this.failures = 0;
      this.track(pid);
      this.log?.info(logAs, { network: this.name, pid, ms: Math.round(ms) });
      this.emit('started', { name: this.name, pid, ms });
      return pid;
    } catch (e) {
      this.stateValue = 'idle';
      throw e;
    }
  }

  /**
   * Take over a dnsmasq already running with our conf file (found by the pid file). Resolves true
   * when adopted (now supervised), false when there is none (nothing changed).
   */
  adopt(): Promise<boolean> {
    return this.serialize(async () => {
      if (this.stateValue === 'running' && this.isAlive()) return true;
      const found = await this.findOurs();
      if (found === undefined) return false;
      this.track(found.pid, found.startTime);
      this.log?.info('dnsmasq adopted', { network: this.name, pid: found.pid });
      this.emit('adopted', { name: this.name, pid: found.pid });
      return true;
    });
  }

  /** adopt() if ours is running, else start(). Resolves with the pid. */
  async ensure(): Promise<number> {
    if (await this.adopt()) return this.pidValue!;
    return this.start();
  }

  /** SIGHUP: dnsmasq re-reads dhcp-hostsfile and addn-hosts (not the main config). */
  async reload(): Promise<void> {
    await this.chain.catch(() => {});
    const pid = this.pidValue;
    if (pid === undefined || !this.isAlive()) {
      throw new CommandError(
        `dnsmasq: reload ${this.name}`,
        ['kill', '-HUP', String(pid ?? '?')],
        undefined,
        'dnsmasq is not running',
      );
    }
    this.probe.kill(pid, 'SIGHUP');
    this.log?.info('dnsmasq reloaded', { network: this.name, pid });
    this.emit('reloaded', { name: this.name, pid });
  }

  /**
   * Stop and start again (for a changed config; optionally with a new argv). Resolves with the new
   * pid. Logged once ('dnsmasq restarted'); the events are still 'stopped' then 'started'.
   */
  async restart(argv?: readonly string[]): Promise<number> {
    if (argv) this.setArgv(argv);
    return this.serialize(async () => {
      await this.doStop(false);
      return this.doStart('dnsmasq restarted');
    });
  }

  /**
   * Stop supervising, kill dnsmasq (SIGTERM, then SIGKILL after stopTimeoutMs), wait until it is gone
   * and remove the pid file. Also stops an unsupervised dnsmasq of ours found by the pid file.
   */
  stop(): Promise<void> {
    return this.serialize(() => this.doStop(true));
  }

  private async doStop(log: boolean): Promise<void> {
    this.stateValue = 'stopping';
    this.unwatch();
    let target: { pid: number; startTime: number } | undefined;
    if (this.pidValue !== undefined && this.isAlive()) {
      target = { pid: this.pidValue, startTime: this.startTime! };
    } else {
      target = await this.findOurs();
    }
    if (target) await this.killAndWait(target);
    await rm(this.pidFile, { force: true });
    const pid = target?.pid;
    this.pidValue = undefined;
    this.startTime = undefined;
    this.stateValue = 'stopped';
    if (log) this.log?.info('dnsmasq stopped', { network: this.name, pid });
    this.emit('stopped', { name: this.name, pid });
  }

  /** Stop supervising but leave dnsmasq running (the supervisor's process is going away). */
  detach(): void {
    this.unwatch();
    this.stateValue = 'detached';
  }

  // --- internals ---

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.catch(() => {}).then(fn);
    this.chain = next;
    return next;
  }

  /** A live dnsmasq named by our pid file and started with our conf file. */
  private async findOurs(): Promise<{ pid: number; startTime: number } | undefined> {
    const pid = await this.probe.readPidFile(this.pidFile);
    if (pid === undefined) return undefined;
    const st = this.probe.stat(pid);
    if (!st || st.state === 'Z' || st.state === 'X') return undefined;
    const argv = this.probe.cmdline(pid);
    if (!argv || !isDnsmasqWithConf(argv, this.confFile)) return undefined;
    return { pid, startTime: st.startTime };
  }

  /** Run the start command (dnsmasq daemonizes) and read the pid file. */
  private async spawnDaemon(): Promise<number> {
    const step = `dnsmasq: start ${this.name}`;
    await this.inotify.check(this.name);
    await rm(this.pidFile, { force: true });
    const req = {
      step,
      argv: this.argvValue,
      timeoutMs: 15_000,
      ...(this.netns ? { netns: this.netns } : {}),
    };
    await this.runner.run(req);
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      const pid = await this.probe.readPidFile(this.pidFile);
      if (pid !== undefined) {
        const st = this.probe.stat(pid);
        if (st && st.state !== 'Z' && st.state !== 'X') return pid;
        throw new CommandError(step, this.argvValue, 0, `dnsmasq (pid ${pid}) exited right after starting`);
      }
      if (Date.now() > deadline) {
        throw new CommandError(
          step,
          this.argvValue,
          0,
          `no pid in ${this.pidFile} after ${this.startTimeoutMs} ms`,
        );
      }
      await sleep(5);
    }
  }

  private track(pid: number, startTime?: number): void {
    this.unwatch();
    this.pidValue = pid;
    this.startTime = startTime ?? this.probe.stat(pid)?.startTime;
    this.startedAt = Date.now();
    this.stateValue = 'running';
    this.pollTimer = setInterval(() => this.poll(), this.pollMs);
    this.pollTimer.unref();
  }

  private unwatch(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.pollTimer = undefined;
    this.restartTimer = undefined;
  }

  private poll(): void {
    if (this.stateValue !== 'running' || this.isAlive()) return;
    const pid = this.pidValue!;
    const uptimeMs = Date.now() - this.startedAt;
    this.unwatch();
    this.pidValue = undefined;
    this.startTime = undefined;
    this.stateValue = 'restarting';
    if (uptimeMs >= this.backoff.resetAfterMs) this.failures = 0;
    this.log?.warning('dnsmasq died', { network: this.name, pid, uptimeMs });
    this.emit('died', { name: this.name, pid, uptimeMs });
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const attempt = this.failures;
    const delay = backoffDelay(attempt, this.backoff);
    this.failures += 1;
    const go = () => {
      this.restartTimer = undefined;
      // From a timer; the body catches its own failures (restart-failed, then the next attempt).
      void this.serialize(async () => {
        if (this.stateValue !== 'restarting') return; // stopped or detached meanwhile
        const t0 = performance.now();
        try {
          const stale = await this.findOurs();
          if (stale !== undefined) await this.killAndWait(stale);
          const pid = await this.spawnDaemon();
          const ms = performance.now() - t0;
          this.track(pid); // the failure count is reset only once it has run resetAfterMs
          this.log?.notice('dnsmasq restarted', { network: this.name, pid, attempt });
          this.emit('restarted', { name: this.name, pid, attempt, ms });
        } catch (e) {
          const error = e instanceof Error ? e : new Error(String(e));
          const retryInMs = backoffDelay(this.failures, this.backoff);
          this.log?.error('dnsmasq restart failed', {
            network: this.name,
            attempt,
            error: error.message,
            retryInMs,
          });
          this.emit('restart-failed', { name: this.name, attempt, error, retryInMs });
          if (this.stateValue === 'restarting') this.scheduleRestart();
        }
      });
    };
    if (delay === 0) go();
    else {
      this.restartTimer = setTimeout(go, delay);
      this.restartTimer.unref();
    }
  }

  private async killAndWait(target: { pid: number; startTime: number }): Promise<void> {
    const same = () => {
      const st = this.probe.stat(target.pid);
      return st !== undefined && st.state !== 'Z' && st.state !== 'X' && st.startTime === target.startTime;
    };
    const signal = (sig: NodeJS.Signals) => {
      try {
        this.probe.kill(target.pid, sig);
      } catch {
        // already gone
      }
    };
    if (!same()) return;
    signal('SIGTERM');
    const deadline = Date.now() + this.stopTimeoutMs;
    while (same() && Date.now() < deadline) await sleep(5);
    if (!same()) return;
    signal('SIGKILL');
    const hard = Date.now() + 2000;
    while (same() && Date.now() < hard) await sleep(5);
    if (same()) {
      throw new CommandError(
        `dnsmasq: stop ${this.name}`,
        ['kill', '-KILL', String(target.pid)],
        undefined,
        'process did not exit',
      );
    }
  }
}

function requireLeaseFile(opts: DnsmasqSupervisorOptions): string {
  if (!opts.leaseFile) throw new Error('DnsmasqSupervisor: leaseFile is required when argv is not given');
  return opts.leaseFile;
}

function checkArgv(argv: readonly string[]): void {
  if (argv.length === 0) throw new Error('DnsmasqSupervisor: empty argv');
  const fg = argv.find((a) => FOREGROUND_FLAGS.has(a));
  if (fg) throw new Error(`DnsmasqSupervisor: dnsmasq must daemonize; remove ${fg} from its argv`);
}
