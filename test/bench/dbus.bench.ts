/**
 * Benchmark of virtnetd's bus API (issue 4 targets: property Get p50 ≤ 2 ms and ≥ 2,000 calls/s from
 * one client; daemon RSS with 100 networks ≤ 80 MB).
 *
 *   node --import ./test/helpers/ts-register.mjs test/bench/dbus.bench.ts [--networks N] [--no-start]
 *
 * Runs as root: a private system bus, virtnetd COMPILED with tsc into a temp dir (so the TypeScript
 * loader is not counted in its RSS) running with the real engine inside a test netns (prefix vh7-b).
 * Measures: one client (a dbus-next connection) doing sequential Properties.Get calls (latency
 * percentiles, calls/s), the same client with 16 calls in flight (calls/s), ListNetworks with N
 * networks, and the daemon's RSS idle / with N networks defined / with N networks up. Prints a table
 * and one JSON line. Everything it made is removed at the end.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callMethod, connectBus, type MessageBus } from '../../src/bus/dbus.js';
import {
  BUS_NAME,
  busctl,
  MANAGER_IFACE,
  MANAGER_PATH,
  NETWORK_IFACE,
  startPrivateBus,
  startVirtnetd,
} from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const argv = process.argv.slice(2);
const N = Number(argv[argv.indexOf('--networks') + 1] ?? 100) || 100;
const START = !argv.includes('--no-start');
/** node flags for the daemon instead of its shebang's (e.g. to compare V8 heap settings). */
const NODE_OPTS = argv.includes('--node-options') ? argv[argv.indexOf('--node-options') + 1] : undefined;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

/** CPU time (user+system) used so far by a process, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
  return (ticks * 1000) / 100; // USER_HZ = 100 on Linux
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

async function get(conn: MessageBus, path: string, prop: string): Promise<unknown> {
  const [v] = await callMethod(conn, {
    destination: BUS_NAME,
    path,
    interface: 'org.freedesktop.DBus.Properties',
    member: 'Get',
    signature: 'ss',
    body: [NETWORK_IFACE, prop],
  });
  return v;
}

async function main(): Promise<void> {
  const skip = missingPrereqs(['ip', 'dbus-daemon', 'busctl', 'dnsmasq', 'nft']);
  if (skip) {
    console.log(`dbus bench skipped: ${skip}`);
    return;
  }
  // Inside the project (.tmp/ is git-ignored) so the build finds node_modules.
  mkdirSync(join(projectRoot, '.tmp'), { recursive: true });
  const out = mkdtempSync(join(projectRoot, '.tmp', 'vh7-bench-build-'));
  const base = mkdtempSync(join(tmpdir(), 'vh7-bench-'));
  chmodSync(base, 0o755);
  console.error(`building with tsc into ${out} ...`);
  // tsc emits even when the tree has type errors (work in progress elsewhere): go on when the entry
  // point was emitted, say so.
  const tsc = spawnSync(
    join(projectRoot, 'node_modules/.bin/tsc'),
    ['-p', join(projectRoot, 'tsconfig.json'), '--outDir', out],
    {
      stdio: 'inherit',
    },
  );
  if (!existsSync(join(out, 'src/bin/virtnetd.js'))) throw new Error('tsc did not emit src/bin/virtnetd.js');
  if (tsc.status !== 0)
    console.error('warning: tsc reported type errors (above); benchmarking the emitted code');
  // Run the daemon with the node flags its shebang gives (what /usr/bin/virtnetd runs with), unless
  // --node-options says otherwise.
  const entry = join(out, 'src/bin/virtnetd.js');
  const shebang = readFileSync(entry, 'utf8').split('\n', 1)[0]!;
  const flags = /^#!\/usr\/bin\/env -S node (.*)$/.exec(shebang)?.[1]?.trim();
  const nodeOptions = NODE_OPTS ?? flags;
  const bus = await startPrivateBus();
  const ns = await createNetns('vh7-b');
  let daemon: Awaited<ReturnType<typeof startVirtnetd>> | undefined;
  const results: Record<string, number | string> = { networks: N, nodeOptions: nodeOptions ?? '' };
  let conn: MessageBus | undefined;
  try {
    daemon = await startVirtnetd({
      bus,
      configDir: join(base, 'networks'),
      stateDir: join(base, 'state'),
      runDir: join(base, 'run'),
      netns: ns.name,
      logLevel: 'warning',
      compiledEntry: entry,
      nodeArgs: nodeOptions ? nodeOptions.split(/\s+/) : [],
    });
    const pid = daemon.pid;
    results.rssIdleMb = rssMb(pid);
    const call = (path: string, iface: string, member: string, signature = '', body: unknown[] = []) =>
      callMethod(conn!, { destination: BUS_NAME, path, interface: iface, member, signature, body });
    conn = await connectBus(bus.address);

    // Define N networks.
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const xml = `<network><name>b${i}</name><forward mode='nat'/><bridge name='vh7b${i}' stp='off'/><ip address='10.${100 + Math.floor(i / 250)}.${i % 250}.1' prefix='24'><dhcp><range start='10.${100 + Math.floor(i / 250)}.${i % 250}.10' end='10.${100 + Math.floor(i / 250)}.${i % 250}.50'/></dhcp></ip></network>`;
      await call(MANAGER_PATH, MANAGER_IFACE, 'DefineNetwork', 's', [xml]);
    }
    results.defineMsEach = round((performance.now() - t0) / N, 1);
    results.rssDefinedMb = rssMb(pid);
    const path = `${MANAGER_PATH}/network/b0`;

    // Sequential Get from one client.
    for (let i = 0; i < 300; i++) await get(conn, path, 'Active');
    const lat: number[] = [];
    const cpu0 = cpuMs(pid);
    const tSeq = performance.now();
    const seqN = 3000;
    for (let i = 0; i < seqN; i++) {
      const s = performance.now();
      await get(conn, path, 'Active');
      lat.push(performance.now() - s);
    }
    const seqS = (performance.now() - tSeq) / 1000;
    // Load-independent: the daemon's own CPU time per Get (what limits calls/s on an idle machine).
    results.daemonCpuUsPerGet = Math.round(((cpuMs(pid) - cpu0) * 1000) / seqN);
    lat.sort((a, b) => a - b);
    results.getP50Ms = round(pct(lat, 50));
    results.getP90Ms = round(pct(lat, 90));
    results.getP99Ms = round(pct(lat, 99));
    results.getSequentialPerS = Math.round(seqN / seqS);

    // Floor: the same client calling the bus driver itself (dbus-daemon answers, no virtnetd involved).
    const tFloor = performance.now();
    for (let i = 0; i < seqN; i++) {
      await callMethod(conn, {
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'GetId',
      });
    }
    results.busDriverSequentialPerS = Math.round(seqN / ((performance.now() - tFloor) / 1000));

    // Pipelined: 16 calls in flight from the same client.
    const pipeN = 6000;
    let next = 0;
    const tPipe = performance.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < pipeN) {
          next++;
          await get(conn!, path, 'Bridge');
        }
      }),
    );
    results.getPipelinedPerS = Math.round(pipeN / ((performance.now() - tPipe) / 1000));

    const tl = performance.now();
    const [paths] = await call(MANAGER_PATH, MANAGER_IFACE, 'ListNetworks');
    results.listNetworksMs = round(performance.now() - tl, 2);
    if ((paths as string[]).length !== N)
      throw new Error(`ListNetworks returned ${(paths as string[]).length}`);

    // One busctl process per Get (what a shell script pays), for reference.
    const bl: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      await busctl(bus, ['get-property', BUS_NAME, path, NETWORK_IFACE, 'Active']);
      bl.push(performance.now() - s);
    }
    bl.sort((a, b) => a - b);
    results.busctlGetP50Ms = round(pct(bl, 50), 1);

    if (START) {
      const ts = performance.now();
      let up = 0;
      for (let i = 0; i < N; i++) {
        try {
          await call(`${MANAGER_PATH}/network/b${i}`, NETWORK_IFACE, 'Start');
          up++;
        } catch (e) {
          results.startError = (e as Error).message.slice(-400);
          break;
        }
      }
      results.networksUp = up;
      results.startMsEach = round((performance.now() - ts) / Math.max(up, 1), 1);
      results.rssUpMb = rssMb(pid);
      // Get latency again with N networks up (lease watchers, supervisors running).
      const lat2: number[] = [];
      for (let i = 0; i < 1000; i++) {
        const s = performance.now();
        await get(conn, path, 'Active');
        lat2.push(performance.now() - s);
      }
      lat2.sort((a, b) => a - b);
      results.getP50MsWithUp = round(pct(lat2, 50));
      for (let i = 0; i < up; i++) {
        await call(`${MANAGER_PATH}/network/b${i}`, NETWORK_IFACE, 'Stop').catch(() => {});
      }
    }
  } finally {
    conn?.disconnect();
    await daemon?.stop('SIGTERM');
    cleanupAllNetns();
    await bus.stop();
    rmSync(base, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
  const width = Math.max(...Object.keys(results).map((k) => k.length));
  for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(width)}  ${v}`);
  console.log(JSON.stringify({ bench: 'dbus', ...results }));
}

await main();
