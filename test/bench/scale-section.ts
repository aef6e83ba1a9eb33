/**
 * Scale: virtnetd as shipped, on a private bus in the bench's netns, brings up 10, 100 and 1,000
 * isolated networks with DHCP (a CI farm's per-job networks: one bridge + one dnsmasq each) with up to 100
 * Start calls in flight at once, then takes them down the same way; the daemon's RSS with all up.
 * Each dnsmasq takes an inotify instance: the section raises `fs.inotify.max_user_instances` to what
 * it needs for the run and restores the value it found (also when the run fails).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { callMethod, connectBus, type MessageBus } from '../../src/bus/dbus.js';
import { packageRoot } from '../../src/util/package.js';
import { BUS_NAME, MANAGER_PATH, NETWORK_IFACE, startVirtnetd } from '../helpers/dbus.js';
import type { Netns } from '../helpers/netns.js';
import type { PrivateBus } from '../helpers/private-bus.js';
import { inotifyFree, type Sample, sleep, time } from './lib.js';

export const SCALE_SIZES = [10, 100, 1000] as const;

export interface ScaleSectionOptions {
  bus: PrivateBus;
  ns: Netns;
  dir: string;
  log: (s: string) => void;
}

const IN_FLIGHT = 100;
const INOTIFY_LIMIT = '/proc/sys/fs/inotify/max_user_instances';

/** An isolated network (no <forward>) with DHCP; addresses 10.200.0.0/24 … */
export function scaleNetXml(i: number): string {
  const b = `10.${200 + Math.floor(i / 250)}.${i % 250}`;
  return `<network><name>s${i}</name><bridge name='vsc${i}' stp='off'/><ip address='${b}.1' prefix='24'><dhcp><range start='${b}.10' end='${b}.50'/></dhcp></ip></network>`;
}

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

/** Runs `fn` with the inotify instance limit raised to leave `need` free; restores the old value. */
async function withInotifyHeadroom(need: number, log: (s: string) => void, fn: () => Promise<void>) {
  const before = readFileSync(INOTIFY_LIMIT, 'utf8').trim();
  const { free, limit } = inotifyFree();
  const raised = free < need ? limit + (need - free) + 16 : undefined;
  if (raised !== undefined) {
    log(`scale: inotify max_user_instances ${limit} → ${raised} for the run (${free} free, ${need} needed)`);
    writeFileSync(INOTIFY_LIMIT, `${raised}\n`);
  }
  const restore = () => {
    if (raised !== undefined) writeFileSync(INOTIFY_LIMIT, `${before}\n`);
  };
  // Interrupted (Ctrl-C, kill): restore before dying; the harness's netns cleanup stops the rest.
  const onSignal = (sig: NodeJS.Signals) => {
    restore();
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await fn();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    restore();
    if (raised !== undefined) log(`scale: inotify max_user_instances restored to ${before}`);
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
  const configDir = join(o.dir, 'networks');
  const stateDir = join(o.dir, 'state');
  const runDir = mkdtempSync(join('/dev/shm', 'vh10-scale-run-'));
  chmodSync(runDir, 0o755);
  mkdirSync(configDir, { recursive: true });
  const max = SCALE_SIZES[SCALE_SIZES.length - 1]!;
  // Defined as files before the daemon starts (as configuration management would drop them): each
  // DefineNetwork call makes the config watcher re-read the whole directory (see README).
  for (let i = 0; i < max; i++) writeFileSync(join(configDir, `s${i}.xml`), scaleNetXml(i));
  await withInotifyHeadroom(max + 8, o.log, async () => {
    const daemon = await startVirtnetd({
      bus: o.bus,
      configDir,
      stateDir,
      runDir,
      netns: o.ns.name,
      logLevel: 'warning',
      compiledEntry: entry,
      nodeArgs,
    });
    let conn: MessageBus | undefined;
    try {
      conn = await connectBus(o.bus.address);
      const c = conn;
      const call = (path: string, iface: string, member: string, signature = '', body: unknown[] = []) =>
        callMethod(c, { destination: BUS_NAME, path, interface: iface, member, signature, body });
      // At most IN_FLIGHT calls pending from the one client: dbus-daemon caps a connection's
      // pending replies (max_replies_per_connection), as the system bus does.
      const all = (n: number, member: 'Start' | 'Stop') =>
        time(async () => {
          let next = 0;
          await Promise.all(
            Array.from({ length: Math.min(n, IN_FLIGHT) }, async () => {
              while (next < n) {
                const i = next++;
                await call(`${MANAGER_PATH}/network/s${i}`, NETWORK_IFACE, member);
              }
            }),
          );
        });
      const per: Record<string, number> = {};
      for (const n of SCALE_SIZES) {
        o.log(`scale: ${n} networks up`);
        const up = await all(n, 'Start');
        await sleep(2500); // the daemon collects garbage after 1 s idle (idle-gc.ts)
        const rss = rssMb(daemon.pid);
        o.log(`scale: ${n} networks down`);
        const down = await all(n, 'Stop');
        per[`up.${n}`] = up / n;
        per[`down.${n}`] = down / n;
        const ratio = (k: string) => (per[`${k}.${n}`]! / per[`${k}.${SCALE_SIZES[0]}`]!).toFixed(2);
        out.push({
          key: `scale.up.${n}`,
          what: `${n} isolated DHCP networks up (Start calls, ≤ ${IN_FLIGHT} in flight)`,
          unit: 'ms',
          xs: [up],
          note: `${(up / n).toFixed(1)} ms/network, ×${ratio('up')} per network vs ${SCALE_SIZES[0]}`,
        });
        out.push({
          key: `scale.down.${n}`,
          what: `${n} isolated DHCP networks down (Stop calls, ≤ ${IN_FLIGHT} in flight)`,
          unit: 'ms',
          xs: [down],
          note: `${(down / n).toFixed(1)} ms/network, ×${ratio('down')} per network vs ${SCALE_SIZES[0]}`,
        });
        out.push({ key: `scale.rss.${n}`, what: `daemon RSS, ${n} networks up`, unit: 'MB', xs: [rss] });
      }
    } finally {
      conn?.disconnect();
      await daemon.stop('SIGTERM');
      rmSync(runDir, { recursive: true, force: true });
    }
  });
}
