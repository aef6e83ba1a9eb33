/**
 * Shared by the engine integration tests: builds the engine driver (tsc, cached by source mtimes),
 * spawns it inside a test namespace, and talks to it; plus snapshots of a namespace's state for
 * zero-residue comparisons.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Network } from '../../src/model/network.js';
import { type Netns, sleep } from '../helpers/netns.js';
import { projectRoot } from '../helpers/shared.js';

const buildDir = join(projectRoot, '.tmp', 'vh5-engine-build');
const marker = join(buildDir, '.built');
export const driverJs = join(buildDir, 'test', 'integration', 'engine-driver.js');

function newestMtime(dir: string): number {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) max = Math.max(max, newestMtime(p));
    else if (e.name.endsWith('.ts')) max = Math.max(max, statSync(p).mtimeMs);
  }
  return max;
}

/** Compile the driver and what it imports (only that closure) unless the build is newer than the sources. */
export function buildDriver(): string {
  const src = Math.max(
    newestMtime(join(projectRoot, 'src')),
    statSync(join(projectRoot, 'test/integration/engine-driver.ts')).mtimeMs,
  );
  if (existsSync(marker) && statSync(marker).mtimeMs > src && existsSync(driverJs)) return driverJs;
  try {
    execFileSync(
      join(projectRoot, 'node_modules', '.bin', 'tsc'),
      [
        '--outDir',
        buildDir,
        '--rootDir',
        projectRoot,
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--skipLibCheck',
        '--types',
        'node',
        '--sourceMap',
        'false',
        join(projectRoot, 'test/integration/engine-driver.ts'),
      ],
      { cwd: projectRoot, stdio: 'pipe' },
    );
  } catch (e) {
    // tsc still emits on type errors (noEmitOnError is off); only a missing output is fatal.
    if (!existsSync(driverJs)) throw e;
  }
  writeFileSync(marker, '');
  return driverJs;
}

export interface DriverReply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
  errorName?: string;
  step?: string;
}

export class EngineDriver {
  private next = 1;
  private readonly waiting = new Map<number, (r: DriverReply) => void>();
  stderr = '';
  readonly exited: Promise<number | string>;

  private constructor(readonly child: ChildProcess) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      let r: DriverReply;
      try {
        r = JSON.parse(line) as DriverReply;
      } catch {
        return;
      }
      this.waiting.get(r.id)?.(r);
      this.waiting.delete(r.id);
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? s ?? -1)));
  }

  /** Spawn the driver inside `ns` (namespace cleanup kills every process in it, the driver too). */
  static spawn(ns: Netns): EngineDriver {
    const child = spawn('ip', ['netns', 'exec', ns.name, 'node', buildDriver()], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    return new EngineDriver(child);
  }

  /** Send a request; resolves with the reply (ok or not). */
  raw(op: string, ...args: unknown[]): Promise<DriverReply> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, resolve);
      this.child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`, (err) => err && reject(err));
      void this.exited.then((code) => {
        if (this.waiting.has(id))
          reject(new Error(`engine driver exited (${code}) during ${op}: ${this.stderr}`));
      });
    });
  }

  /** Send a request; throws with the engine's error message when it failed. */
  async call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const r = await this.raw(op, ...args);
    if (!r.ok) throw new Error(`${op}: ${r.errorName}: ${r.error}`);
    return r.result as T;
  }

  kill9(): void {
    this.child.kill('SIGKILL');
  }

  async end(): Promise<void> {
    this.child.stdin?.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

/** A Network with libvirt's defaults spelled out (the tests do not depend on the XML parser). */
export function testNetwork(over: Partial<Network> & { name: string }): Network {
  return {
    uuid: '6f3c1e2a-0000-4000-8000-000000000001',
    forward: { mode: 'nat', interfaces: [] },
    bridge: { name: 'vbr0', stp: false, delay: 0 },
    mac: '52:54:00:5a:00:01',
    ips: [],
    routes: [],
    dnsmasqOptions: [],
    ignored: [],
    ...over,
  };
}

/** What must be the same before start and after stop in the engine's namespace. */
export async function snapshot(ns: Netns): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const sh = async (k: string, argv: string[]) => {
    out[k] = (await ns.exec(argv, { allowFail: true })).stdout;
  };
  await sh('links', ['ip', '-o', 'link', 'show']);
  await sh('addrs', ['ip', '-o', 'addr', 'show']);
  await sh('routes4', ['ip', '-4', 'route', 'show', 'table', 'all']);
  await sh('routes6', ['ip', '-6', 'route', 'show', 'table', 'all']);
  await sh('nft', ['nft', 'list', 'ruleset']);
  await sh('iptables', ['iptables-save']);
  await sh('ip6tables', ['ip6tables-save']);
  await sh('sysctl', [
    'sh',
    '-c',
    'cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding',
  ]);
  // Processes other than the driver(s) and the snapshot itself, and the ruleset watcher's `nft
  // monitor` of a live engine (its parent is a node process; an orphaned one still counts).
  const comm = (p: number | string) => {
    try {
      return execFileSync('cat', [`/proc/${p}/comm`], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  const watcherOfLiveEngine = (p: number) => {
    try {
      const cmd = execFileSync('cat', [`/proc/${p}/cmdline`], { encoding: 'utf8' }).split('\0');
      const ppid = /^PPid:\s+(\d+)$/m.exec(
        execFileSync('cat', [`/proc/${p}/status`], { encoding: 'utf8' }),
      )?.[1];
      return cmd[0] === 'nft' && cmd[1] === 'monitor' && ppid !== undefined && comm(ppid) === 'node';
    } catch {
      return false;
    }
  };
  out.procs = ns
    .pids()
    .filter((p) => !watcherOfLiveEngine(p))
    .map((p) => comm(p))
    .filter((c) => c && c !== 'node' && c !== 'ip' && c !== 'cat')
    .sort()
    .join(',');
  // iptables-nft creates the built-in tables and chains on first use and leaves them behind, empty
  // with policy ACCEPT: they carry no behaviour, so they are not residue.
  out.nft = dropEmptyBuiltins(out.nft!);
  for (const k of ['iptables', 'ip6tables']) out[k] = dropEmptySaveTables(out[k]!);
  // Counters and volatile link stats are not state.
  for (const k of Object.keys(out)) {
    out[k] = out[k]!.replace(/\[\d+:\d+\]/g, '[0:0]')
      .replace(/^# (Generated|Completed).*$/gm, '')
      .replace(/counter packets \d+ bytes \d+/g, 'counter')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .join('\n');
  }
  return out;
}

/**
 * A run directory for the engine under the namespace's temp dir. The temp dir is 0700 (mkdtemp);
 * dnsmasq drops to `nobody` and re-reads its host files on SIGHUP, so the path must be traversable,
 * as /run/virtnet is in production.
 */
export async function runDirFor(ns: Netns): Promise<string> {
  chmodSync(ns.dir, 0o755);
  const dir = join(ns.dir, 'run');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

/** Wait until no IPv6 address in `ns` is tentative (link-locals of new links), so snapshots are stable. */
export async function settle(ns: Netns, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await ns.exec(['ip', '-6', 'addr', 'show', 'tentative'], { allowFail: true });
    if (r.stdout.trim() === '' || Date.now() > end) return;
    await sleep(50);
  }
}

const BUILTIN = /^(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING)$/;

/** `nft list ruleset` without empty, policy-accept built-in chains, and without tables left empty. */
export function dropEmptyBuiltins(ruleset: string): string {
  const tables = ruleset.split(/^(?=table )/m);
  const kept: string[] = [];
  for (const t of tables) {
    if (!t.startsWith('table ')) {
      if (t.trim()) kept.push(t);
      continue;
    }
    const chains = t.split(/\n(?=\tchain )/);
    const head = chains.shift()!;
    const live = chains.filter((c) => {
      const name = /^\tchain (\S+) \{/.exec(c)?.[1] ?? '';
      const body = c
        .split('\n')
        .slice(1)
        .map((l) => l.trim())
        .filter((l) => l && l !== '}' && !/^type .* policy accept;$/.test(l));
      return !(BUILTIN.test(name) && body.length === 0);
    });
    if (live.length === 0) continue;
    // Chain order inside a table carries no meaning (iptables-nft re-creates chains in another
    // order); rule order inside a chain does and is kept.
    const chainsText = live.map((c) => c.replace(/\s+$/, '').replace(/\n}$/, '').replace(/\s+$/, '')).sort();
    kept.push(`${head.replace(/\s+$/, '')}\n${chainsText.join('\n')}\n}\n`);
  }
  return kept.sort().join('');
}

/** iptables-save output without tables that hold nothing but built-in ACCEPT chains. */
export function dropEmptySaveTables(save: string): string {
  return save
    .split(/^(?=\*)/m)
    .filter((block) => {
      if (!block.startsWith('*')) return block.trim() !== '';
      const lines = block.split('\n').filter((l) => l.trim());
      return lines.some(
        (l) =>
          l.startsWith('-') ||
          (l.startsWith(':') && !/^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) ACCEPT/.test(l)),
      );
    })
    .join('');
}

export interface Topology {
  host: Netns;
  up: Netns;
  guests: Netns[];
  /** State of the host namespace before the engine touched it. */
  before: Record<string, string>;
  runDir: string;
}

/**
 * host ⇄ uplink (wan0 192.0.2.2/24 ⇄ up0 192.0.2.1/24, host default route via the uplink) and N
 * guests, each a namespace whose eth0 (MAC 52:54:00:aa:00:0N) is the peer of vnet(N-1) in host.
 */
export async function topology(
  createNetns: (prefix: string) => Promise<Netns>,
  link: (a: Netns, ifA: string, b: Netns, ifB: string, o?: { macB?: string }) => Promise<void>,
  guests: number,
): Promise<Topology> {
  const host = await createNetns('vh5-h');
  const up = await createNetns('vh5-u');
  await link(host, 'wan0', up, 'up0');
  await host.addAddr('wan0', '192.0.2.2/24');
  await up.addAddr('up0', '192.0.2.1/24');
  await host.addRoute('default', { via: '192.0.2.1' });
  const gs: Netns[] = [];
  for (let i = 0; i < guests; i++) {
    const g = await createNetns('vh5-g');
    await link(host, `vnet${i}`, g, 'eth0', { macB: guestMac(i) });
    gs.push(g);
  }
  await settle(host);
  const before = await snapshot(host);
  return { host, up, guests: gs, before, runDir: await runDirFor(host) };
}

export function guestMac(i: number): string {
  return `52:54:00:aa:00:${(i + 1).toString(16).padStart(2, '0')}`;
}

/** A node TCP server in `ns` that answers each connection with the peer address it sees. */
export function peerEcho(ns: Netns, port: number) {
  return ns.spawn([
    'node',
    '-e',
    `require('net').createServer(s=>{console.log('conn '+s.remoteAddress);s.end(s.remoteAddress+'\\n')}).listen(${port},()=>console.log('listening'))`,
  ]);
}

export async function waitFor(
  fn: () => boolean | Promise<boolean>,
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Connect from `ns` to ip:port with busybox nc; the peer address the server saw, or undefined. */
export async function tcpProbe(ns: Netns, ip: string, port: number): Promise<string | undefined> {
  const r = await ns.exec(['busybox', 'nc', '-w', '2', ip, String(port)], { input: '', allowFail: true });
  const out = r.stdout.trim().replace(/^::ffff:/, '');
  return r.exitCode === 0 && out ? out : undefined;
}

/**
 * A minimal DHCPv6 client (busybox has none): sends one SOLICIT (client id DUID-LL of `mac`, one
 * IA_NA) from `ifname` in `ns` and returns the address the first ADVERTISE/REPLY offers, or undefined.
 */
export async function dhcpv6Solicit(
  ns: Netns,
  ifname: string,
  mac: string,
  timeoutMs = 5000,
): Promise<string | undefined> {
  const script = `
const dgram = require('dgram');
const mac = Buffer.from(${JSON.stringify(mac)}.split(':').map((h) => parseInt(h, 16)));
const duid = Buffer.concat([Buffer.from([0, 3, 0, 1]), mac]);
const opt = (code, data) => { const h = Buffer.alloc(4); h.writeUInt16BE(code, 0); h.writeUInt16BE(data.length, 2); return Buffer.concat([h, data]); };
const iana = Buffer.alloc(12); iana.writeUInt32BE(1, 0);
const msg = Buffer.concat([Buffer.from([1, 0x12, 0x34, 0x56]), opt(1, duid), opt(8, Buffer.alloc(2)), opt(3, iana)]);
const s = dgram.createSocket({ type: 'udp6', reuseAddr: true });
const done = (a) => { console.log(a || 'none'); process.exit(0); };
setTimeout(() => done(), ${timeoutMs});
s.on('message', (m) => {
  if (m[0] !== 2 && m[0] !== 7) return;
  for (let i = 4; i + 4 <= m.length;) {
    const code = m.readUInt16BE(i), len = m.readUInt16BE(i + 2), body = m.subarray(i + 4, i + 4 + len);
    if (code === 3) for (let j = 12; j + 4 <= body.length;) {
      const c = body.readUInt16BE(j), l = body.readUInt16BE(j + 2);
      if (c === 5) { const a = body.subarray(j + 4, j + 20); const g = []; for (let k = 0; k < 16; k += 2) g.push(a.readUInt16BE(k).toString(16)); done(g.join(':')); }
      j += 4 + l;
    }
    i += 4 + len;
  }
});
s.bind(546, '::', () => { const send = () => s.send(msg, 547, 'ff02::1:2%${ifname}'); send(); setInterval(send, 1000); });
`;
  const r = await ns.exec(['node', '-e', script], { timeoutMs: timeoutMs + 5000 });
  const out = r.stdout.trim();
  return out === 'none' ? undefined : out;
}
