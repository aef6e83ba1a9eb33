/**
 * Scale (issue 13): N isolated networks with DHCP (one per CI job, the farm case) defined and started
 * through the compiled virtnetd over a private system bus, then stopped, for N = 10, 100, 1,000.
 * The daemon runs in a network namespace of the harness's; clients call it from outside, many calls
 * in flight at once as a farm's jobs would make them. Each figure: wall time up and down, per network,
 * the per-network ratio against N = 10, and the daemon's RSS (VmRSS) with all N up.
 *
 * Each dnsmasq holds one inotify instance and `fs.inotify.max_user_instances` is counted per user in
 * the initial user namespace (the daemon must be real root there to make bridges and firewall rules),
 * so the section raises that limit for its run and restores the old value in a finally.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { callMethod, connectBus, type MessageBus } from '../../src/bus/dbus.js';
import { packageRoot } from '../../src/util/package.js';
import {
  BUS_NAME,
  MANAGER_IFACE,
  MANAGER_PATH,
  NETWORK_IFACE,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import type { Netns } from '../helpers/netns.js';
import type { PrivateBus } from '../helpers/private-bus.js';
import { inotifyFree, mustRun, percentile, type Sample, sleep, timeRun } from './lib.js';

export const SCALE_NS = [10, 100, 1000];

export interface ScaleSectionOptions {
  bus: PrivateBus;
  ns: Netns;
  dir: string;
  /** Largest N measured (`--scale-max`). */
  max: number;
  /** Calls in flight at once (one connection; the system bus allows 128 pending replies per connection). */
  inFlight: number;
  log: (s: string) => void;
}

const INOTIFY = '/proc/sys/fs/inotify/max_user_instances';

/** An isolated network (no <forward>) with a DHCP range; 10.<200+i/250>.<i%250>.0/24. */
export function scaleXml(i: number): string {
  const b = `10.${200 + Math.floor(i / 250)}.${i % 250}`;
  return `<network><name>s${i}</name><bridge name='vh13s${i}' stp='off'/><ip address='${b}.1' prefix='24'><dhcp><range start='${b}.10' end='${b}.50'/></dhcp></ip></network>`;
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return kb / 1024;
}

/** Run `f(0..n-1)` with at most `k` in flight; the first failure rejects (after all settle). */
async function pool(n: number, k: number, f: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.min(k, n) }, async () => {
      while (next < n) {
        const i = next++;
        try {
          await f(i);
        } catch (e) {
          errors.push(e);
        }
      }
    }),
  );
  if (errors.length) {
    const e = errors[0];
    throw new Error(
      `${errors.length} of ${n} calls failed; first: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

export async function scaleSection(o: ScaleSectionOptions, out: Sample[]): Promise<void> {
  const dist = (rel: string) => {
    const bundled = join(packageRoot(), 'dist', 'bundle', rel);
    return existsSync(bundled) ? bundled : join(packageRoot(), 'dist', 'src', rel);
  };
  const entry = dist('bin/virtnetd.js');
  const shebang = readFileSync(entry, 'utf8').split('\n', 1)[0]!;
  const nodeArgs = /^#!\/usr\/bin\/env -S node (.*)$/.exec(shebang)?.[1]?.trim().split(/\s+/) ?? [];
  const sizes = SCALE_NS.filter((n) => n <= o.max);
  const biggest = Math.max(...sizes);
  const oldLimit = Number(readFileSync(INOTIFY, 'utf8'));
  const ino = inotifyFree();
  const need = biggest + 16;
  let raised = false;
  let daemon: VirtnetdProcess | undefined;
  let conn: MessageBus | undefined;
  const runDir = mkdtempSync(join('/dev/shm', 'vh10-scale-run-'));
  try {
    if (ino.free < need) {
      const limit = oldLimit + (need - ino.free);
      writeFileSync(INOTIFY, `${limit}\n`);
      raised = true;
      o.log(
        `scale: fs.inotify.max_user_instances raised ${oldLimit} → ${limit} for this run (${ino.free} free, each dnsmasq takes one); restored at the end`,
      );
    }
    const configDir = join(o.dir, 'networks');
    mkdirSync(configDir, { recursive: true });
    daemon = await startVirtnetd({
      bus: o.bus,
      configDir,
      stateDir: join(o.dir, 'state'),
      runDir,
      netns: o.ns.name,
      logLevel: 'warning',
      compiledEntry: entry,
      nodeArgs,
      ...(process.env.VIRTNET_BENCH_PROF
        ? { nodeArgs: [...nodeArgs, '--cpu-prof', `--cpu-prof-dir=${process.env.VIRTNET_BENCH_PROF}`] }
        : {}),
    });
    conn = await connectBus(o.bus.address);
    const call = (path: string, iface: string, member: string, signature = '', body: unknown[] = []) =>
      callMethod(conn!, { destination: BUS_NAME, path, interface: iface, member, signature, body });
    const net = (i: number) => `${MANAGER_PATH}/network/s${i}`;
    let defined = 0;
    for (const n of sizes) {
      o.log(`scale: ${n} isolated networks with DHCP, DefineNetwork + Start (${o.inFlight} in flight)`);
      const t0 = performance.now();
      await pool(n, o.inFlight, async (i) => {
        if (i >= defined) await call(MANAGER_PATH, MANAGER_IFACE, 'DefineNetwork', 's', [scaleXml(i)]);
        await call(net(i), NETWORK_IFACE, 'Start');
      });
      const up = performance.now() - t0;
      defined = Math.max(defined, n);
      const dnsmasqs = countDnsmasq(runDir);
      if (dnsmasqs < n) throw new Error(`scale ${n}: only ${dnsmasqs} dnsmasq processes after all Starts`);
      // Settled: the daemon collects garbage once idle for 1 s after a change (idle-gc.ts).
      await sleep(2500);
      const rss = rssMb(daemon.pid);
      // What every Start and Stop pays once (the compatibility layer reads the whole ruleset, which
      // holds every network's table): one `nft -j list ruleset` in the netns, and its size.
      const inNs = ['ip', 'netns', 'exec', o.ns.name];
      const listMs: number[] = [];
      for (let k = 0; k < 5; k++) listMs.push(await timeRun([...inNs, 'nft', '-j', 'list', 'ruleset']));
      const listKb = (await mustRun([...inNs, 'nft', '-j', 'list', 'ruleset'])).length / 1024;
      o.log(
        `scale: with ${n} up, nft -j list ruleset: ${percentile(listMs, 50).toFixed(1)} ms, ${listKb.toFixed(0)} KiB`,
      );
      out.push({
        key: `scale.list.${n}`,
        what: `one \`nft -j list ruleset\` with ${n} up (${listKb.toFixed(0)} KiB)`,
        unit: 'ms',
        xs: listMs,
      });
      o.log(`scale: ${n} up in ${(up / 1000).toFixed(2)} s; RSS ${rss.toFixed(1)} MB; Stop`);
      const t1 = performance.now();
      await pool(n, o.inFlight, (i) => call(net(i), NETWORK_IFACE, 'Stop'));
      const down = performance.now() - t1;
      o.log(`scale: ${n} down in ${(down / 1000).toFixed(2)} s`);
      out.push({
        key: `scale.up.${n}`,
        what: `${n} isolated networks up (DefineNetwork + Start)`,
        unit: 'ms',
        xs: [up],
      });
      out.push({ key: `scale.down.${n}`, what: `${n} networks down (Stop)`, unit: 'ms', xs: [down] });
      out.push({ key: `scale.up.per.${n}`, what: `per network up, N = ${n}`, unit: 'ms', xs: [up / n] });
      out.push({
        key: `scale.down.per.${n}`,
        what: `per network down, N = ${n}`,
        unit: 'ms',
        xs: [down / n],
      });
      out.push({ key: `scale.rss.${n}`, what: `daemon RSS, ${n} networks up`, unit: 'MB', xs: [rss] });
      await sleep(1000);
    }
  } finally {
    conn?.disconnect();
    await daemon?.stop('SIGTERM');
    if (raised) {
      writeFileSync(INOTIFY, `${oldLimit}\n`);
      o.log(`scale: fs.inotify.max_user_instances restored to ${oldLimit}`);
    }
    rmSync(runDir, { recursive: true, force: true });
  }
}

/** Running dnsmasq processes whose command line names the daemon's run dir (the ones it started). */
function countDnsmasq(runDir: string): number {
  let n = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.startsWith('dnsmasq') || cmd.includes('/dnsmasq\0')) if (cmd.includes(runDir)) n++;
    } catch {}
  }
  return n;
}
