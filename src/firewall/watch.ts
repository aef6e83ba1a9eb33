/**
 * Notices changes to the host's ruleset as they happen, so that lost rules are put back at once:
 * `nft monitor` (a child process reading the kernel's nftables notifications over netlink) reports
 * every change to any nftables table — virtnet's own, iptables-nft's, firewalld's — including
 * `nft flush ruleset`, `iptables -F` and `iptables-restore` (Debian's iptables is iptables-nft).
 *
 * Legacy x_tables send no notification. While the kernel has a legacy `filter` table in this
 * namespace (`/proc/net/ip_tables_names`; someone uses iptables-legacy), the watcher also reads the
 * legacy tables every `legacyPollMs` (`legacyFingerprint`, one save per family) and calls
 * `onChange` when they changed — the only way to see a legacy rule set change.
 *
 * `onChange` calls are debounced (`debounceMs` after the last notification) and never overlap: a
 * change while one runs schedules exactly one more. The monitor is restarted when it exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface RulesetWatcherOptions {
  onChange: (why: string) => Promise<void>;
  /**
   * What the legacy tables look like now ('' when there are none): polled every `legacyPollMs`
   * while a legacy filter table exists; a check is due when it changed.
   */
  legacyFingerprint?: () => Promise<string>;
  /** A monitor problem (exit, spawn failure), for the log. */
  onTrouble?: (message: string) => void;
  debounceMs?: number;
  legacyPollMs?: number;
  /** The monitor command (tests). Default `nft monitor`. */
  argv?: string[];
}

export class RulesetWatcher {
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again: string | undefined;
  private closed = false;
  private restarts = 0;

  constructor(private readonly o: RulesetWatcherOptions) {}

  start(): void {
    this.spawnMonitor();
    const every = this.o.legacyPollMs ?? 1000;
    let last: string | undefined;
    this.poll = setInterval(() => {
      // From a timer; hasLegacy and the fingerprint catch their own read errors.
      void (async () => {
        if (!(await hasLegacy())) return;
        const now = this.o.legacyFingerprint
          ? await this.o.legacyFingerprint().catch(() => undefined)
          : undefined;
        if (now !== undefined && now === last) return;
        last = now;
        this.kick('legacy iptables changed');
      })();
    }, every);
    this.poll.unref();
  }

  private spawnMonitor(): void {
    if (this.closed) return;
    const [cmd, ...args] = this.o.argv ?? defaultMonitorArgv();
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', () => this.kick('nftables ruleset changed'));
    child.stderr?.on('data', (d: Buffer) => this.o.onTrouble?.(`nft monitor: ${d.toString().trim()}`));
    child.on('error', (e) => this.o.onTrouble?.(`nft monitor: ${e.message}`));
    child.on('exit', (code, sig) => {
      if (this.child === child) this.child = undefined;
      if (this.closed) return;
      this.restarts++;
      this.o.onTrouble?.(`nft monitor exited (${code ?? sig}); restarting`);
      // A monitor that cannot run at all is retried slowly; a check is due anyway (changes may
      // have happened while it was down).
      const t = setTimeout(() => this.spawnMonitor(), Math.min(1000 * this.restarts, 10_000));
      t.unref();
      this.kick('nft monitor restarted');
    });
  }

  /** Schedule a check (debounced; never two at a time). */
  kick(why: string): void {
    if (this.closed) return;
    if (this.running) {
      this.again = why;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.run(why);
    }, this.o.debounceMs ?? 15);
  }

  private run(why: string): void {
    this.running = this.o
      .onChange(why)
      .catch((e) => this.o.onTrouble?.(`ruleset check failed: ${(e as Error).message}`))
      .finally(() => {
        this.running = undefined;
        const next = this.again;
        this.again = undefined;
        if (next) this.kick(next);
      });
  }

  /** Stop watching; waits for a check that is running. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.poll) clearInterval(this.poll);
    this.child?.kill();
    await this.running;
  }
}

/**
 * `nft monitor`, under `setpriv --pdeathsig TERM` when setpriv is there: the monitor then ends with
 * virtnetd even when virtnetd is killed (the unit's KillMode=process leaves children running, for
 * dnsmasq's sake; an orphaned monitor would stay until its next write).
 */
function defaultMonitorArgv(): string[] {
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  return setpriv ? [setpriv, '--pdeathsig', 'TERM', '--', 'nft', 'monitor'] : ['nft', 'monitor'];
}

async function hasLegacy(): Promise<boolean> {
  for (const f of ['/proc/net/ip_tables_names', '/proc/net/ip6_tables_names']) {
    const names = await readFile(f, 'utf8').catch(() => '');
    if (names.split('\n').includes('filter')) return true;
  }
  return false;
}
