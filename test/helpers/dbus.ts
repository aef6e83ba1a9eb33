/**
 * A private system bus for tests, and virtnetd as a real process on it.
 *
 * `startPrivateBus()` runs `dbus-daemon --config-file=FILE` with a config this module writes: `<type>
 * system</type>`, a unix socket in a fresh temp dir, Debian's system.conf default policy (deny
 * own/method calls by default, allow replies and signals, Monitoring for root), the system's
 * /usr/share/dbus-1/system.d policies (dnsmasq's among them) and virtnet's shipped policy
 * dbus/org.virtnet.network1.conf — so the bus behaves like the system bus, with virtnet's real policy.
 *
 * `startVirtnetd()` runs src/bin/virtnetd.ts from the sources (node --import ts-register.mjs), optionally
 * inside a network namespace, and waits until it owns org.virtnet.network1.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { PrivateBus } from './private-bus.js';
import { projectRoot } from './shared.js';

export { type PrivateBus, type PrivateBusOptions, startPrivateBus } from './private-bus.js';

export const BUS_NAME = 'org.virtnet.network1';
export const MANAGER_PATH = '/org/virtnet/network1';
export const MANAGER_IFACE = 'org.virtnet.network1.Manager';
export const NETWORK_IFACE = 'org.virtnet.network1.Network';

export interface ExecOut {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command; never throws for a non-zero exit. */
export function execOut(
  argv: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ExecOut> {
  return new Promise((resolve) => {
    execFile(
      argv[0]!,
      argv.slice(1),
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** `busctl --address=… ARGS` (as root, or as nobody with `asNobody`). */
export function busctl(bus: PrivateBus, args: string[], opts: { asNobody?: boolean } = {}): Promise<ExecOut> {
  const argv = ['busctl', `--address=${bus.address}`, ...args];
  return execOut(opts.asNobody ? [...NOBODY, ...argv] : argv);
}

/** Prefix that runs a command as an unprivileged caller (uid/gid 65534, no groups). */
export const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** A running `busctl monitor` collecting JSON messages. */
export interface Monitor {
  messages(): Array<Record<string, unknown>>;
  /** Wait until a message matches (or time out with the list of what was seen). */
  waitFor(
    pred: (m: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * Start `busctl monitor` on the whole bus (JSON output) and wait until it is attached: a probe call to
 * the bus driver must show up in its output before this resolves.
 */
export async function startMonitor(bus: PrivateBus): Promise<Monitor> {
  const child = spawn('busctl', [`--address=${bus.address}`, 'monitor', '--json=short'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const seen: Array<Record<string, unknown>> = [];
  let buf = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d) => {
    buf += String(d);
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) {
        try {
          seen.push(JSON.parse(line) as Record<string, unknown>);
        } catch {}
      }
      i = buf.indexOf('\n');
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (d) => {
    err += String(d);
  });
  const mon: Monitor = {
    messages: () => seen,
    async waitFor(pred, timeoutMs = 15_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const hit = seen.find(pred);
        if (hit) return hit;
        const left = end - Date.now();
        if (left <= 0) {
          const summary = seen.map((m) => `${m.type} ${m.interface}.${m.member} ${m.path}`).join('\n');
          throw new Error(`monitor: no matching message within ${timeoutMs} ms; seen:\n${summary}\n${err}`);
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, Math.min(left, 200));
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    async stop() {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  };
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`busctl monitor exited (${child.exitCode}): ${err}`);
    await execOut([
      'busctl',
      `--address=${bus.address}`,
      'call',
      'org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus',
      'GetId',
    ]);
    const attached = await mon
      .waitFor((m) => m.member === 'GetId', 300)
      .then(
        () => true,
        () => false,
      );
    if (attached) return mon;
  }
  await mon.stop();
  throw new Error(`busctl monitor did not attach within 15 s: ${err}`);
}

export interface VirtnetdProcess {
  child: ChildProcess;
  pid: number;
  output(): string;
  /** Send a signal and wait for exit; returns the exit code (or signal name). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
  exited(): boolean;
}

export interface VirtnetdOptions {
  bus: PrivateBus;
  configDir: string;
  stateDir: string;
  runDir: string;
  /** Run inside this network namespace (ip netns exec). */
  netns?: string;
  extraArgs?: string[];
  /** virtnetd --libvirt (default 'none': a test never publishes into the host's libvirt). */
  libvirt?: string;
  env?: NodeJS.ProcessEnv;
  logLevel?: string;
  /** Run this compiled virtnetd.js instead of the TypeScript sources (benchmarks: no loader in RSS). */
  compiledEntry?: string;
  /** node flags before the entry (e.g. V8 options from the shebang). */
  nodeArgs?: string[];
}

/** Is `name` owned on the bus? */
export async function nameHasOwner(bus: PrivateBus, name: string): Promise<boolean> {
  const r = await execOut([
    'busctl',
    `--address=${bus.address}`,
    'call',
    'org.freedesktop.DBus',
    '/org/freedesktop/DBus',
    'org.freedesktop.DBus',
    'NameHasOwner',
    's',
    name,
  ]);
  return r.stdout.trim() === 'b true';
}

/** Start virtnetd from the sources and wait until it owns its bus name (and answers). */
export async function startVirtnetd(o: VirtnetdOptions): Promise<VirtnetdProcess> {
  const entry = join(projectRoot, 'src', 'bin', 'virtnetd.ts');
  const register = join(projectRoot, 'test', 'helpers', 'ts-register.mjs');
  const args = [
    'node',
    ...(o.nodeArgs ?? []),
    ...(o.compiledEntry ? [o.compiledEntry] : ['--import', register, entry]),
    '--bus',
    o.bus.address,
    '--config-dir',
    o.configDir,
    '--state-dir',
    o.stateDir,
    '--run-dir',
    o.runDir,
    '--log-level',
    o.logLevel ?? 'debug',
    '--libvirt',
    o.libvirt ?? 'none',
    ...(o.extraArgs ?? []),
  ];
  const argv = o.netns ? ['ip', 'netns', 'exec', o.netns, ...args] : args;
  // Not under systemd unless the test says so (o.env may set NOTIFY_SOCKET).
  const env: NodeJS.ProcessEnv = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: o.bus.address };
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  Object.assign(env, o.env);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += String(d);
  });
  child.stderr!.on('data', (d) => {
    out += String(d);
  });
  const proc: VirtnetdProcess = {
    child,
    pid: child.pid!,
    output: () => out,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (!proc.exited()) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill(signal);
        await Promise.race([gone, new Promise((r) => setTimeout(r, timeoutMs))]);
        if (!proc.exited()) {
          child.kill('SIGKILL');
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      return child.exitCode ?? child.signalCode ?? 'running';
    },
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (proc.exited())
      throw new Error(`virtnetd exited early (${child.exitCode ?? child.signalCode}):\n${out}`);
    if (await nameHasOwner(o.bus, BUS_NAME)) {
      // Owned: wait until loading finished (calls wait for it) with a harmless read.
      const r = await busctl(o.bus, ['get-property', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'Version']);
      if (r.code === 0) return proc;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop('SIGKILL');
  throw new Error(`virtnetd did not own ${BUS_NAME} within 60 s:\n${out}`);
}
