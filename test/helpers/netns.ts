/**
 * Network-namespace sandbox, used by the integration tests and by the demo. Everything happens inside namespaces this module
 * creates; it never touches the root namespace's links, routes or firewall.
 *
 *   const host = await createNetns('vh6-');        // name like vh6-1234-1
 *   const guest = await createNetns('vh6-');
 *   await host.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge']);
 *   await link(host, 'vnet0', guest, 'eth0', { macB: '52:54:00:00:00:01' });
 *   const lease = await guestDhcp(guest, 'eth0');
 *   afterAll(cleanupAllNetns);                      // also runs for namespaces of failed tests
 *
 * Names are unique per test run: prefix + pid + counter. Interface names (≤ 15 chars) are the
 * caller's, or from `uniqueIfname`.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Return a non-zero exit instead of throwing. */
  allowFail?: boolean;
  input?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}

/** Run argv (no shell) and collect its output. Throws on non-zero exit unless `allowFail`. */
export function run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('run: empty argv');
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        encoding: 'utf8',
        timeout: opts.timeoutMs ?? 30_000,
        maxBuffer: 64 << 20,
        env: { ...process.env, LC_ALL: 'C', ...opts.env },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        if (code !== 0 && !opts.allowFail) {
          reject(
            new Error(
              `'${argv.join(' ')}' failed (exit ${code}${err?.signal ? `, ${err.signal}` : ''}): ${stderr.trim()}`,
            ),
          );
          return;
        }
        resolve({ exitCode: code, stdout, stderr });
      },
    );
    // A command that exits without reading its stdin makes the write fail with EPIPE: not our error
    // (its exit code tells), and unhandled it would be an uncaught exception.
    child.stdin?.on('error', () => {});
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

let counter = 0;

/** A netns name unique in this test run: `${prefix}${pid}-${n}`. */
export function uniqueNetnsName(prefix: string): string {
  counter += 1;
  return `${prefix}${process.pid}-${counter}`;
}

let ifCounter = 0;
/** An interface name ≤ 15 characters: `${prefix}${n}` (prefix ≤ 10 chars). */
export function uniqueIfname(prefix: string): string {
  ifCounter += 1;
  const name = `${prefix}${ifCounter}`;
  if (name.length > 15) throw new Error(`interface name too long: ${name}`);
  return name;
}

export interface SpawnedProcess {
  child: ChildProcess;
  argv: string[];
  /** Collected output so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export interface DhcpLease {
  ip: string;
  /** Prefix length. */
  prefix: number;
  subnet: string;
  router?: string;
  dns: string[];
  domain?: string;
  hostname?: string;
  leaseSeconds?: number;
  serverId?: string;
}

export interface GuestDhcpOptions {
  /** Sent as option 12. */
  hostname?: string;
  /** Discover packets to send (default 5). */
  tries?: number;
  /** Seconds between packets (default 1). */
  timeoutSec?: number;
  /** Request this address (-r). */
  requestIp?: string;
  /** Apply the address and default route inside the guest (default true). */
  apply?: boolean;
  /** Release the lease when udhcpc exits (-R): the server drops it at once. */
  release?: boolean;
}

export class Netns {
  readonly dir: string;
  private readonly spawned = new Set<SpawnedProcess>();
  private removed = false;

  constructor(readonly name: string) {
    this.dir = mkdtempSync(join(tmpdir(), `${name}-`));
  }

  /** argv prefixed with `ip netns exec NAME`. */
  wrap(argv: readonly string[]): string[] {
    return ['ip', 'netns', 'exec', this.name, ...argv];
  }

  /** Run argv inside the namespace (no shell). */
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return run(this.wrap(argv), opts);
  }

  /** Synchronous exec, stdout as a string (throws on failure). */
  execSync(argv: readonly string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...argv], { encoding: 'utf8' });
  }

  /** `ip -batch -` inside the namespace. */
  ipBatch(lines: string[]): Promise<ExecResult> {
    return run(['ip', '-n', this.name, '-batch', '-'], { input: `${lines.join('\n')}\n` });
  }

  async up(ifname: string): Promise<void> {
    await run(['ip', '-n', this.name, 'link', 'set', ifname, 'up']);
  }

  async addAddr(ifname: string, cidr: string): Promise<void> {
    await run(['ip', '-n', this.name, 'addr', 'add', cidr, 'dev', ifname]);
  }

  /** `ip route add DEST [via GW] [dev IF]`. */
  async addRoute(dest: string, opts: { via?: string; dev?: string } = {}): Promise<void> {
    const argv = ['ip', '-n', this.name, 'route', 'add', dest];
    if (opts.via) argv.push('via', opts.via);
    if (opts.dev) argv.push('dev', opts.dev);
    await run(argv);
  }

  /** Create a bridge (STP off, no forward delay) and bring it up; optionally give it an address/MAC. */
  async addBridge(name: string, opts: { cidr?: string; mac?: string } = {}): Promise<void> {
    const lines = [`link add ${name} type bridge stp_state 0 forward_delay 0`];
    if (opts.mac) lines.push(`link set ${name} address ${opts.mac}`);
    if (opts.cidr) lines.push(`addr add ${opts.cidr} dev ${name}`);
    lines.push(`link set ${name} up`);
    await this.ipBatch(lines);
  }

  /** Enslave `port` to `bridge` and bring it up; waits until the port forwards. */
  async addPort(bridge: string, port: string, timeoutMs = 10_000): Promise<void> {
    await this.ipBatch([`link set ${port} master ${bridge}`, `link set ${port} up`]);
    await this.waitPortForwarding(port, timeoutMs);
  }

  /** Wait until /sys/class/net/PORT/brport/state is 3 (forwarding) in this namespace. */
  async waitPortForwarding(port: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.exec(['cat', `/sys/class/net/${port}/brport/state`], { allowFail: true });
      if (r.stdout.trim() === '3') return;
      if (Date.now() > deadline)
        throw new Error(`${this.name}: port ${port} not forwarding (state ${r.stdout.trim()})`);
      await sleep(50);
    }
  }

  /** MAC address of an interface in this namespace. */
  async mac(ifname: string): Promise<string> {
    const r = await run(['ip', '-n', this.name, '-j', 'link', 'show', 'dev', ifname]);
    const j = JSON.parse(r.stdout) as { address: string }[];
    return j[0]!.address;
  }

  /** Spawn a long-running process inside the namespace; tracked and killed by cleanup(). */
  spawn(argv: readonly string[], opts: { env?: Record<string, string> } = {}): SpawnedProcess {
    const full = this.wrap(argv);
    const child = spawn(full[0]!, full.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | string>((resolve) => {
      child.on('exit', (code, signal) => resolve(code ?? signal ?? -1));
      child.on('error', () => resolve(-1));
    });
    const p: SpawnedProcess = {
      child,
      argv: full,
      output: () => ({ stdout, stderr }),
      exited,
      kill: (signal = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      },
    };
    this.spawned.add(p);
    void exited.then(() => this.spawned.delete(p));
    return p;
  }

  /** Pids of every process in the namespace (`ip netns pids`). */
  pids(): number[] {
    try {
      return execFileSync('ip', ['netns', 'pids', this.name], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  }

  get isRemoved(): boolean {
    return this.removed;
  }

  /** Kill every process in the namespace, delete it and its temp dir. Safe to call more than once. */
  cleanup(): void {
    if (this.removed) return;
    for (const p of this.spawned) p.kill('SIGKILL');
    // Processes may fork while we kill: repeat until the namespace is empty (bounded).
    for (let i = 0; i < 50; i++) {
      const pids = this.pids().filter((p) => p !== process.pid);
      const alive = pids.filter((p) => !isZombie(p));
      if (alive.length === 0) break;
      for (const pid of alive) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      sleepSync(20);
    }
    try {
      execFileSync('ip', ['netns', 'delete', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    rmSync(this.dir, { recursive: true, force: true });
    this.removed = true;
    registry.delete(this);
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true; // gone
  }
}

const registry = new Set<Netns>();

/** Every namespace created by this process and not yet cleaned up. */
export function liveNetns(): Netns[] {
  return [...registry];
}

/** Create a fresh namespace named `${prefix}${pid}-${n}` with `lo` up. */
export async function createNetns(prefix: string): Promise<Netns> {
  const name = uniqueNetnsName(prefix);
  await run(['ip', 'netns', 'add', name]);
  const ns = new Netns(name);
  registry.add(ns);
  await run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  return ns;
}

/** Clean up every namespace this process created (call from afterAll; safe after failures). */
export function cleanupAllNetns(): void {
  for (const ns of [...registry]) ns.cleanup();
}

process.once('exit', cleanupAllNetns);

/**
 * A veth pair: `ifA` in `a`, `ifB` in `b` (created inside `a`, peer placed directly in `b`; the root
 * namespace is never involved). Both ends are brought up.
 */
export async function link(
  a: Netns,
  ifA: string,
  b: Netns,
  ifB: string,
  opts: { macA?: string; macB?: string; up?: boolean } = {},
): Promise<void> {
  for (const n of [ifA, ifB]) if (n.length > 15) throw new Error(`interface name too long: ${n}`);
  const argv = ['ip', '-n', a.name, 'link', 'add', ifA];
  if (opts.macA) argv.push('address', opts.macA);
  argv.push('type', 'veth', 'peer', 'name', ifB);
  if (opts.macB) argv.push('address', opts.macB);
  argv.push('netns', b.name);
  await run(argv);
  if (opts.up ?? true) {
    await a.up(ifA);
    await b.up(ifB);
  }
}

const UDHCPC_SCRIPT = `#!/bin/sh
# udhcpc event script written by test/helpers/netns.ts: records the lease and applies it.
out="$VH_LEASE_FILE"
ev="$1"
case "$ev" in
  deconfig)
    [ "$VH_APPLY" = 1 ] && ip addr flush dev "$interface" && ip link set "$interface" up
    ;;
  bound|renew)
    if [ "$VH_APPLY" = 1 ]; then
      ip addr flush dev "$interface"
      ip addr add "$ip/$mask" dev "$interface"
      if [ -n "$router" ]; then
        set -- $router
        ip route replace default via "$1" dev "$interface"
      fi
    fi
    {
      echo "ip=$ip"
      echo "mask=$mask"
      echo "subnet=$subnet"
      echo "router=$router"
      echo "dns=$dns"
      echo "domain=$domain"
      echo "hostname=$hostname"
      echo "lease=$lease"
      echo "serverid=$serverid"
    } > "$out.tmp" && mv "$out.tmp" "$out"
    ;;
esac
# after the lease file: an event line means its effects are visible
echo "$ev \${ip:-}" >> "$out.events"
exit 0
`;

/** Parse the key=value file the udhcpc script writes. */
export function parseLeaseRecord(text: string): DhcpLease {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const opt = (k: string) => kv.get(k) || undefined;
  const lease: DhcpLease = {
    ip: kv.get('ip') ?? '',
    prefix: Number(kv.get('mask') ?? 'NaN'),
    subnet: kv.get('subnet') ?? '',
    dns: (kv.get('dns') ?? '').split(/\s+/).filter(Boolean),
  };
  const router = opt('router')?.split(/\s+/)[0];
  if (router) lease.router = router;
  if (opt('domain')) lease.domain = opt('domain')!;
  if (opt('hostname')) lease.hostname = opt('hostname')!;
  if (opt('lease')) lease.leaseSeconds = Number(opt('lease'));
  if (opt('serverid')) lease.serverId = opt('serverid')!;
  return lease;
}

function udhcpcSetup(ns: Netns, ifname: string, opts: GuestDhcpOptions, oneShot: boolean) {
  const script = join(ns.dir, 'udhcpc.sh');
  writeFileSync(script, UDHCPC_SCRIPT, { mode: 0o755 });
  const leaseFile = join(ns.dir, `lease-${ifname}`);
  rmSync(leaseFile, { force: true });
  rmSync(`${leaseFile}.events`, { force: true });
  const tries = opts.tries ?? 5;
  const timeoutSec = opts.timeoutSec ?? 1;
  const argv = ['busybox', 'udhcpc', '-i', ifname, '-f'];
  if (oneShot) argv.push('-q', '-n');
  argv.push('-t', String(tries), '-T', String(timeoutSec), '-s', script);
  if (opts.hostname) argv.push('-x', `hostname:${opts.hostname}`);
  if (opts.requestIp) argv.push('-r', opts.requestIp);
  if (opts.release) argv.push('-R');
  const env = { VH_LEASE_FILE: leaseFile, VH_APPLY: opts.apply === false ? '0' : '1' };
  return { argv, env, leaseFile, tries, timeoutSec };
}

/**
 * Run `busybox udhcpc -i IF -f -q -n -t 5 -T 1 -s SCRIPT` in `ns`; resolves with the lease the script
 * recorded (and applied, unless `apply: false`). Rejects when no lease was obtained. (With -q, udhcpc
 * exits without releasing even under -R: use startGuestDhcp to release.)
 */
export async function guestDhcp(ns: Netns, ifname: string, opts: GuestDhcpOptions = {}): Promise<DhcpLease> {
  const { argv, env, leaseFile, tries, timeoutSec } = udhcpcSetup(ns, ifname, opts, true);
  const r = await ns.exec(argv, {
    allowFail: true,
    timeoutMs: (tries * timeoutSec + 30) * 1000,
    env,
  });
  let text: string;
  try {
    text = readFileSync(leaseFile, 'utf8');
  } catch {
    throw new Error(
      `${ns.name}: udhcpc on ${ifname} got no lease (exit ${r.exitCode}): ${(r.stderr + r.stdout).trim()}`,
    );
  }
  return parseLeaseRecord(text);
}

/** A DHCP client that keeps running in the guest (renews, releases). */
export interface GuestDhcpClient {
  readonly lease: DhcpLease;
  process: SpawnedProcess;
  /** The script events so far ("deconfig", "bound 10.0.0.5", "renew …", "leasefail", …). */
  events(): string[];
  /** SIGUSR1: renew now; resolves with the renewed lease. */
  renew(timeoutMs?: number): Promise<DhcpLease>;
  /** SIGUSR2: release the lease (the server drops it); the client stays, unconfigured. */
  release(timeoutMs?: number): Promise<void>;
  /** SIGTERM (releases first when started with `release: true`) and wait for the exit. */
  stop(): Promise<void>;
}

/** Start `busybox udhcpc -f` (no -q) in `ns` and wait for its first lease. */
export async function startGuestDhcp(
  ns: Netns,
  ifname: string,
  opts: GuestDhcpOptions = {},
): Promise<GuestDhcpClient> {
  const { argv, env, leaseFile, tries, timeoutSec } = udhcpcSetup(ns, ifname, opts, false);
  const proc = ns.spawn(argv, { env });
  const events = (): string[] => {
    try {
      return readFileSync(`${leaseFile}.events`, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  const waitEvent = async (from: number, re: RegExp, timeoutMs: number): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = events()
        .slice(from)
        .find((e) => re.test(e));
      if (hit) return hit;
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        throw new Error(`${ns.name}: udhcpc exited: ${proc.output().stderr.trim()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`${ns.name}: no ${re} from udhcpc on ${ifname}: ${events().join('; ')}`);
      }
      await sleep(10);
    }
  };
  const readLease = () => parseLeaseRecord(readFileSync(leaseFile, 'utf8'));
  try {
    await waitEvent(0, /^bound /, (tries * timeoutSec + 10) * 1000);
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  let lease = readLease();
  return {
    get lease() {
      return lease;
    },
    process: proc,
    events,
    async renew(timeoutMs = 5000) {
      const n = events().length;
      proc.kill('SIGUSR1');
      await waitEvent(n, /^(renew|bound) /, timeoutMs);
      lease = readLease();
      return lease;
    },
    async release(timeoutMs = 5000) {
      const n = events().length;
      proc.kill('SIGUSR2');
      await waitEvent(n, /^deconfig/, timeoutMs);
    },
    async stop() {
      proc.kill('SIGTERM');
      await proc.exited;
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
