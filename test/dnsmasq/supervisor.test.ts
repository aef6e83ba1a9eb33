import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProcessProbe, ProcStat } from '../../src/dnsmasq/proc.js';
import { realProbe } from '../../src/dnsmasq/proc.js';
import { backoffDelay, DEFAULT_BACKOFF, DnsmasqSupervisor } from '../../src/dnsmasq/supervisor.js';
import { CommandError } from '../../src/errors.js';
import type { CommandRunner, RunRequest, RunResult } from '../../src/exec/runner.js';

/** A simulated process table + a runner whose "dnsmasq" daemonizes by writing the pid file. */
class World implements ProcessProbe, CommandRunner {
  procs = new Map<number, { stat: ProcStat; argv: string[]; ignoreTerm?: boolean }>();
  signals: [number, string][] = [];
  runs: RunRequest[] = [];
  nextPid = 1000;
  tick = 1;
  /** When set, the next start attempts fail with this stderr. */
  failStarts = 0;
  ignoreTerm = false;

  async run(req: RunRequest): Promise<RunResult> {
    this.runs.push(req);
    if (this.failStarts > 0) {
      this.failStarts -= 1;
      throw new CommandError(
        req.step,
        req.argv,
        2,
        'dnsmasq: failed to create listening socket: Address in use',
      );
    }
    const pid = this.nextPid++;
    this.procs.set(pid, {
      stat: { state: 'S', ppid: 1, startTime: this.tick++ },
      argv: [...req.argv],
      ignoreTerm: this.ignoreTerm,
    });
    const pidFile = req.argv.find((a) => a.startsWith('--pid-file='))!.slice('--pid-file='.length);
    writeFileSync(pidFile, `${pid}\n`);
    return { exitCode: 0, stdout: '', stderr: '' };
  }
  readPidFile(path: string) {
    return realProbe.readPidFile(path);
  }
  stat(pid: number) {
    return this.procs.get(pid)?.stat;
  }
  cmdline(pid: number) {
    const p = this.procs.get(pid);
    return p && p.stat.state !== 'Z' ? p.argv : undefined;
  }
  kill(pid: number, signal: NodeJS.Signals | 0) {
    const p = this.procs.get(pid);
    if (!p || p.stat.state === 'Z') throw Object.assign(new Error('ESRCH'), { code: 'ESRCH' });
    this.signals.push([pid, String(signal)]);
    if (signal === 'SIGKILL' || (signal === 'SIGTERM' && !p.ignoreTerm)) this.die(pid);
  }
  /** Crash: becomes a zombie (PID 1 here does not reap). */
  die(pid: number) {
    const p = this.procs.get(pid)!;
    p.stat = { ...p.stat, state: 'Z' };
  }
  alive(): number[] {
    return [...this.procs].filter(([, p]) => p.stat.state !== 'Z').map(([pid]) => pid);
  }
}

let dir: string;
let world: World;
let sup: DnsmasqSupervisor | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sup-'));
  world = new World();
});
afterEach(() => {
  sup?.detach();
  sup = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function make(extra: Partial<ConstructorParameters<typeof DnsmasqSupervisor>[0]> = {}) {
  sup = new DnsmasqSupervisor({
    name: 'net1',
    confFile: join(dir, 'net1.conf'),
    pidFile: join(dir, 'net1.pid'),
    leaseFile: join(dir, 'net1.leases'),
    runner: world,
    probe: world,
    pollMs: 10,
    backoff: { initialMs: 40, factor: 2, maxMs: 1000, resetAfterMs: 10_000 },
    ...extra,
  });
  return sup;
}

const waitFor = async (cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('backoffDelay', () => {
  it('is 0 for the first restart, then grows by the factor up to the max', () => {
    expect([0, 1, 2, 3, 4].map((n) => backoffDelay(n))).toEqual([0, 100, 200, 400, 800]);
    expect(backoffDelay(50)).toBe(DEFAULT_BACKOFF.maxMs);
  });
});

describe('DnsmasqSupervisor (simulated processes)', () => {
  it('the constructor does nothing', () => {
    make();
    expect(world.runs).toEqual([]);
    expect(sup!.state).toBe('idle');
    expect(sup!.pid).toBeUndefined();
  });

  it('builds its argv with dnsmasqArgv and refuses a foreground argv', () => {
    const s = make();
    expect(s.argv).toEqual([
      'dnsmasq',
      `--conf-file=${join(dir, 'net1.conf')}`,
      `--pid-file=${join(dir, 'net1.pid')}`,
      `--dhcp-leasefile=${join(dir, 'net1.leases')}`,
    ]);
    expect(() => make({ argv: ['dnsmasq', '--keep-in-foreground'] })).toThrow(/must daemonize/);
    expect(() => make({ argv: ['dnsmasq', '-d'] })).toThrow(/must daemonize/);
  });

  it('start() runs the command (in the netns when asked), reads the pid file, emits started', async () => {
    const s = make({ netns: 'vh6-x' });
    const events: unknown[] = [];
    s.on('started', (e) => events.push(e));
    const pid = await s.start();
    expect(pid).toBe(1000);
    expect(s.pid).toBe(1000);
    expect(s.state).toBe('running');
    expect(s.isAlive()).toBe(true);
    expect(world.runs).toHaveLength(1);
    expect(world.runs[0]!.netns).toBe('vh6-x');
    expect(events).toEqual([expect.objectContaining({ name: 'net1', pid: 1000 })]);
    // idempotent
    expect(await s.start()).toBe(1000);
    expect(world.runs).toHaveLength(1);
  });

  it('a failed start throws the CommandError and leaves the supervisor idle', async () => {
    const s = make();
    world.failStarts = 1;
    await expect(s.start()).rejects.toThrow(/Address in use/);
    expect(s.state).toBe('idle');
    expect(s.pid).toBeUndefined();
  });

  it('restarts a dead dnsmasq at once, then with exponential back-off while it keeps dying', async () => {
    const s = make();
    const restarts: { pid: number; attempt: number; at: number }[] = [];
    const died: number[] = [];
    s.on('restarted', (e) => restarts.push({ pid: e.pid, attempt: e.attempt, at: Date.now() }));
    s.on('died', (e) => died.push(e.pid));
    await s.start();
    let t = Date.now();
    const gaps: number[] = [];
    for (let i = 0; i < 4; i++) {
      world.die(s.pid!);
      t = Date.now();
      await waitFor(() => restarts.length === i + 1);
      gaps.push(restarts[i]!.at - t);
    }
    expect(died).toEqual([1000, 1001, 1002, 1003]);
    expect(restarts.map((r) => r.attempt)).toEqual([0, 1, 2, 3]);
    expect(restarts.map((r) => r.pid)).toEqual([1001, 1002, 1003, 1004]);
    // attempt 0 immediate (poll 10 ms); then ≥ 40, 80, 160 ms
    expect(gaps[0]).toBeLessThan(40);
    expect(gaps[1]).toBeGreaterThanOrEqual(40);
    expect(gaps[2]).toBeGreaterThanOrEqual(80);
    expect(gaps[3]).toBeGreaterThanOrEqual(160);
    expect(world.alive()).toEqual([1004]);
  });

  it('keeps retrying when the restart itself fails, emitting restart-failed', async () => {
    const s = make();
    const failed: { attempt: number; retryInMs: number; msg: string }[] = [];
    s.on('restart-failed', (e) =>
      failed.push({ attempt: e.attempt, retryInMs: e.retryInMs, msg: e.error.message }),
    );
    await s.start();
    world.failStarts = 2;
    world.die(s.pid!);
    await waitFor(() => s.state === 'running' && s.pid === 1001);
    expect(failed.map((f) => [f.attempt, f.retryInMs])).toEqual([
      [0, 40],
      [1, 80],
    ]);
    expect(failed[0]!.msg).toMatch(/Address in use/);
  });

  it('treats a reused pid (different start time) as dead', async () => {
    const s = make();
    await s.start();
    const p = world.procs.get(1000)!;
    p.stat = { ...p.stat, startTime: 999_999 };
    expect(s.isAlive()).toBe(false);
    await waitFor(() => s.pid === 1001);
  });

  it('reload() sends SIGHUP; throws CommandError when not running', async () => {
    const s = make();
    await expect(s.reload()).rejects.toBeInstanceOf(CommandError);
    await s.start();
    await s.reload();
    expect(world.signals).toEqual([[1000, 'SIGHUP']]);
  });

  it('stop() terminates, waits, removes the pid file, and does not restart', async () => {
    const s = make();
    const died: number[] = [];
    s.on('died', (e) => died.push(e.pid));
    await s.start();
    await s.stop();
    expect(world.signals).toEqual([[1000, 'SIGTERM']]);
    expect(world.alive()).toEqual([]);
    expect(await world.readPidFile(s.pidFile)).toBeUndefined();
    expect(s.state).toBe('stopped');
    await new Promise((r) => setTimeout(r, 50));
    expect(died).toEqual([]);
    expect(world.runs).toHaveLength(1);
  });

  it('stop() escalates to SIGKILL when SIGTERM is ignored', async () => {
    const s = make({ stopTimeoutMs: 30 });
    world.ignoreTerm = true;
    await s.start();
    await s.stop();
    expect(world.signals).toEqual([
      [1000, 'SIGTERM'],
      [1000, 'SIGKILL'],
    ]);
    expect(world.alive()).toEqual([]);
  });

  it('adopt() takes over only a live dnsmasq with our conf file', async () => {
    const a = make();
    await a.start();
    a.detach();
    // a fresh supervisor (new process) adopts it
    const b = make();
    const adopted: number[] = [];
    b.on('adopted', (e) => adopted.push(e.pid));
    expect(await b.adopt()).toBe(true);
    expect(b.pid).toBe(1000);
    expect(adopted).toEqual([1000]);
    expect(world.runs).toHaveLength(1);
    // and supervises it
    world.die(1000);
    await waitFor(() => b.pid === 1001);
    b.detach();

    // pid file naming a process that is not dnsmasq with our conf: refused
    const c = make();
    world.procs.get(1001)!.argv = ['dnsmasq', '--conf-file=/elsewhere.conf'];
    expect(await c.adopt()).toBe(false);
    expect(c.pid).toBeUndefined();
    world.procs.get(1001)!.argv = ['sleep', '100'];
    expect(await c.adopt()).toBe(false);
    // zombie: refused
    world.procs.get(1001)!.argv = [...world.runs[0]!.argv];
    world.die(1001);
    expect(await c.adopt()).toBe(false);
  });

  it('ensure() adopts when possible, else starts', async () => {
    const a = make();
    expect(await a.ensure()).toBe(1000);
    a.detach();
    const b = make();
    expect(await b.ensure()).toBe(1000);
    expect(world.runs).toHaveLength(1);
  });

  it('start() replaces a leftover dnsmasq of ours instead of running two', async () => {
    const a = make();
    await a.start();
    a.detach();
    const b = make();
    expect(await b.start()).toBe(1001);
    expect(world.alive()).toEqual([1001]);
  });

  it('stop() from a fresh supervisor kills the dnsmasq named by the pid file', async () => {
    const a = make();
    await a.start();
    a.detach();
    const b = make();
    await b.stop();
    expect(world.alive()).toEqual([]);
  });

  it('restart() stops and starts with the new argv', async () => {
    const s = make();
    await s.start();
    const argv = [...s.argv, '--enable-dbus=uk.org.thekelleys.dnsmasq.virbr9'];
    expect(await s.restart(argv)).toBe(1001);
    expect(world.runs[1]!.argv).toEqual(argv);
    expect(world.alive()).toEqual([1001]);
  });

  it('stop() during back-off cancels the pending restart', async () => {
    const s = make({ backoff: { initialMs: 200, factor: 2, maxMs: 1000, resetAfterMs: 10_000 } });
    await s.start();
    world.die(1000);
    await waitFor(() => s.pid === 1001);
    world.die(1001); // second quick death: restart in 200 ms
    await waitFor(() => s.state === 'restarting');
    await s.stop();
    await new Promise((r) => setTimeout(r, 300));
    expect(world.runs).toHaveLength(2);
    expect(s.state).toBe('stopped');
  });
});
