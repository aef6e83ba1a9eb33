/**
 * virtnetd as shipped (the compiled dist/src/bin/virtnetd.js with its shebang's node flags, real
 * engine) inside the bench's network namespace, on a private system bus. Measured from outside as a
 * client would: the network operations libvirt is compared on (one `busctl call` process per
 * operation, as `virsh` is one process per operation; also `virtnetctl` and an in-process client),
 * property Get latency and calls/s, file save → reconciled, the libvirt hook with the daemon up and
 * down, the daemon's RSS idle and with 100 networks up.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
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
import { domainXml, meta } from '../hooks/fakes.js';
import {
  DBUS_SEND_FLOOR,
  DEFAULT_XML,
  inotifyFree,
  mustRun,
  percentile,
  runCmd,
  type Sample,
  sleep,
  time,
  timedRun,
  timeRun,
} from './lib.js';

export interface DaemonSectionOptions {
  bus: PrivateBus;
  ns: Netns;
  /** A temp dir of the harness's. */
  dir: string;
  runs: number;
  heavyRuns: number;
  /** Rounds of 1,000 sequential Gets (and of pipelined Gets). */
  getRounds: number;
  log: (s: string) => void;
}

const NET_PATH = `${MANAGER_PATH}/network/default`;
const HOOK_MAC = '52:54:01:ff:00:01';

/** A python3 that has the dbus module (Debian's python3-dbus), if any. */
function findDbusPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', 'import dbus'], { stdio: 'ignore' }).status === 0) return py;
  }
  return undefined;
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return kb / 1024;
}

async function rssSamples(pid: number, n: number): Promise<number[]> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    xs.push(rssMb(pid));
    await sleep(200);
  }
  return xs;
}

/** The XML of the `default` network with or without one extra reservation (the file-save test). */
function defaultXmlWithHost(withHost: boolean): string {
  return withHost
    ? DEFAULT_XML.replace(
        '</dhcp>',
        `  <host mac='${HOOK_MAC}' ip='192.168.122.250' name='saved'/>\n    </dhcp>`,
      )
    : DEFAULT_XML;
}

function netXml(i: number): string {
  const b = `10.${100 + Math.floor(i / 250)}.${i % 250}`;
  return `<network><name>b${i}</name><forward mode='nat'/><bridge name='vh10b${i}' stp='off'/><ip address='${b}.1' prefix='24'><dhcp><range start='${b}.10' end='${b}.50'/></dhcp></ip></network>`;
}

/** Measures into `out` as it goes (what was measured survives a failure later on). */
export async function daemonSection(o: DaemonSectionOptions, out: Sample[]): Promise<void> {
  // What install.sh ships: the esbuild bundles of the entry points when the build made them (they
  // replace dist/src's at install), else tsc's output.
  const dist = (rel: string) => {
    const bundled = join(packageRoot(), 'dist', 'bundle', rel);
    return existsSync(bundled) ? bundled : join(packageRoot(), 'dist', 'src', rel);
  };
  const entry = dist('bin/virtnetd.js');
  const ctl = dist('bin/virtnetctl.js');
  const hookMain = dist('hooks/main.js');
  o.log(`daemon: ${entry}, ${ctl}, hook fallback ${hookMain}`);
  // The node flags the shebang gives (what /usr/bin/virtnetd runs with).
  const shebang = readFileSync(entry, 'utf8').split('\n', 1)[0]!;
  const nodeArgs = /^#!\/usr\/bin\/env -S node (.*)$/.exec(shebang)?.[1]?.trim().split(/\s+/) ?? [];
  const configDir = join(o.dir, 'networks');
  const stateDir = join(o.dir, 'state');
  // Records, locks and dnsmasq files on tmpfs, as /run/virtnet is in production.
  const runDir = mkdtempSync(join('/dev/shm', 'vh10-bench-run-'));
  chmodSync(runDir, 0o755);
  mkdirSync(configDir, { recursive: true });
  const configFile = join(configDir, 'default.xml');
  writeFileSync(configFile, DEFAULT_XML);
  const hostsfile = join(runDir, 'dnsmasq', 'default.hostsfile');
  const busctlArgv = (...args: string[]) => ['busctl', `--address=${o.bus.address}`, ...args];
  const busctl = (...args: string[]) => mustRun(busctlArgv(...args));
  let daemon: VirtnetdProcess | undefined;
  let conn: MessageBus | undefined;
  const call = (path: string, iface: string, member: string, signature = '', body: unknown[] = []) =>
    callMethod(conn!, { destination: BUS_NAME, path, interface: iface, member, signature, body });
  const get = (prop: string) =>
    callMethod(conn!, {
      destination: BUS_NAME,
      path: NET_PATH,
      interface: 'org.freedesktop.DBus.Properties',
      member: 'Get',
      signature: 'ss',
      body: [NETWORK_IFACE, prop],
    });
  const start = (logLevel = 'warning') =>
    startVirtnetd({
      bus: o.bus,
      configDir,
      stateDir,
      runDir,
      netns: o.ns.name,
      logLevel,
      compiledEntry: entry,
      nodeArgs,
    });
  try {
    daemon = await start();
    const pid = daemon.pid;
    await sleep(1000);
    out.push({
      key: 'daemon.rss.idle',
      what: 'daemon RSS, idle (1 network defined)',
      unit: 'MB',
      xs: await rssSamples(pid, 5),
    });
    conn = await connectBus(o.bus.address);

    // Property Get from one client: sequential (latency, calls/s) and 16 in flight (calls/s).
    o.log('daemon: property Get');
    for (let i = 0; i < 300; i++) await get('Active');
    const p50: number[] = [];
    const seqRate: number[] = [];
    const pipeRate: number[] = [];
    for (let r = 0; r < o.getRounds; r++) {
      const lat: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < 1000; i++) {
        const s = performance.now();
        await get('Active');
        lat.push(performance.now() - s);
      }
      seqRate.push(1000 / ((performance.now() - t0) / 1000));
      p50.push(percentile(lat, 50));
      let next = 0;
      const t1 = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < 4000) {
            next++;
            await get('Bridge');
          }
        }),
      );
      pipeRate.push(4000 / ((performance.now() - t1) / 1000));
    }
    // The same sequential Gets from a client on libdbus (dbus-python): a C library's client cost
    // instead of node + dbus-next's, which is about as much as the daemon's own (see README).
    const py = findDbusPython();
    const cRate: number[] = [];
    const cP50: number[] = [];
    if (py) {
      const r = await runCmd([
        py,
        join(packageRoot(), 'test', 'bench', 'get-client.py'),
        o.bus.address,
        NET_PATH,
        NETWORK_IFACE,
        'Active',
        String(o.getRounds),
        '1000',
      ]);
      if (r.code !== 0)
        throw new Error(`get-client.py failed (exit ${r.code}): ${r.stderr.trim().slice(-600)}`);
      for (const line of r.stdout.trim().split('\n')) {
        const { rate, p50: p } = JSON.parse(line) as { rate: number; p50: number };
        cRate.push(rate);
        cP50.push(p);
      }
    } else o.log('daemon: no python3 with the dbus module (python3-dbus): the libdbus client rows are empty');
    out.push({
      key: 'dbus.get.p50',
      what: 'D-Bus property Get, p50 of 1,000 sequential (libdbus client)',
      unit: 'ms',
      xs: cP50,
    });
    out.push({
      key: 'dbus.get.seq',
      what: 'D-Bus Get calls/s, one libdbus client (dbus-python), sequential',
      unit: 'calls/s',
      xs: cRate,
    });
    out.push({
      key: 'dbus.get.p50.node',
      what: 'D-Bus property Get, p50 of 1,000 sequential (node client: dbus-next)',
      unit: 'ms',
      xs: p50,
    });
    out.push({
      key: 'dbus.get.seq.node',
      what: 'D-Bus Get calls/s, one node client (dbus-next), sequential',
      unit: 'calls/s',
      xs: seqRate,
    });
    out.push({
      key: 'dbus.get.pipe',
      what: 'D-Bus Get calls/s, one node client (dbus-next), 16 in flight',
      unit: 'calls/s',
      xs: pipeRate,
    });

    // The operations compared with libvirt: one client process per operation.
    o.log('daemon: start/stop, reservations');
    const netCall = (member: string, sig = '', ...args: string[]) =>
      busctl('call', BUS_NAME, NET_PATH, NETWORK_IFACE, member, ...(sig ? [sig, ...args] : []));
    // One busctl process per operation, timed by the shell timer (lib.ts timedRun) like virsh is.
    const timeNetCall = (member: string, sig = '', ...args: string[]) =>
      timeRun(busctlArgv('call', BUS_NAME, NET_PATH, NETWORK_IFACE, member, ...(sig ? [sig, ...args] : [])));
    await netCall('Start');
    await netCall('Stop');
    const floor: number[] = [];
    const bStart: number[] = [];
    const bStop: number[] = [];
    const cStart: number[] = [];
    const cStop: number[] = [];
    const iStart: number[] = [];
    const iStop: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      floor.push(await timeRun(busctlArgv('call', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'ListNetworks')));
      bStart.push(await timeNetCall('Start'));
      bStop.push(await timeNetCall('Stop'));
      iStart.push(await time(() => call(NET_PATH, NETWORK_IFACE, 'Start')));
      iStop.push(await time(() => call(NET_PATH, NETWORK_IFACE, 'Stop')));
      cStart.push(await timeRun(['node', ctl, 'start', 'default', '--bus', o.bus.address]));
      cStop.push(await timeRun(['node', ctl, 'stop', 'default', '--bus', o.bus.address]));
    }
    out.push({
      key: 'cli.floor',
      what: 'one trivial call from a CLI (busctl ListNetworks)',
      unit: 'ms',
      xs: floor,
    });
    out.push({
      key: 'daemon.start.busctl',
      what: 'network start via daemon (busctl call Start)',
      unit: 'ms',
      xs: bStart,
    });
    out.push({
      key: 'daemon.stop.busctl',
      what: 'network stop via daemon (busctl call Stop)',
      unit: 'ms',
      xs: bStop,
    });
    out.push({
      key: 'daemon.start.client',
      what: 'network start via daemon (in-process D-Bus client)',
      unit: 'ms',
      xs: iStart,
    });
    out.push({
      key: 'daemon.stop.client',
      what: 'network stop via daemon (in-process D-Bus client)',
      unit: 'ms',
      xs: iStop,
    });
    out.push({
      key: 'daemon.start.ctl',
      what: 'network start via `virtnetctl start` (node CLI)',
      unit: 'ms',
      xs: cStart,
    });
    out.push({
      key: 'daemon.stop.ctl',
      what: 'network stop via `virtnetctl stop` (node CLI)',
      unit: 'ms',
      xs: cStop,
    });

    await netCall('Start');
    const add: number[] = [];
    const del: number[] = [];
    const iAdd: number[] = [];
    const iDel: number[] = [];
    const sAdd: number[] = [];
    const sDel: number[] = [];
    const timeSend = (member: string, ...args: string[]) =>
      timeRun([
        'dbus-send',
        `--bus=${o.bus.address}`,
        '--print-reply',
        `--dest=${BUS_NAME}`,
        NET_PATH,
        `${NETWORK_IFACE}.${member}`,
        ...args,
      ]);
    for (let r = 0; r < o.runs; r++) {
      const mac = `52:54:01:aa:00:${r.toString(16).padStart(2, '0')}`;
      add.push(await timeNetCall('AddHost', 'sss', mac, `192.168.122.${100 + r}`, `live${r}`));
      del.push(await timeNetCall('RemoveHost', 's', mac));
      // The same with dbus-send, the lightest C client (the one the hooks use: a VM's reservation is
      // made through it at domain start); busctl's own start-up is ~7 ms here.
      sAdd.push(
        await timeSend('AddHost', `string:${mac}`, `string:192.168.122.${100 + r}`, `string:live${r}`),
      );
      sDel.push(await timeSend('RemoveHost', `string:${mac}`));
      iAdd.push(
        await time(() =>
          call(NET_PATH, NETWORK_IFACE, 'AddHost', 'sss', [mac, `192.168.122.${100 + r}`, `live${r}`]),
        ),
      );
      iDel.push(await time(() => call(NET_PATH, NETWORK_IFACE, 'RemoveHost', 's', [mac])));
    }
    out.push({
      key: 'daemon.add.busctl',
      what: 'add 1 reservation live via daemon (busctl call AddHost)',
      unit: 'ms',
      xs: add,
    });
    out.push({
      key: 'daemon.del.busctl',
      what: 'remove 1 reservation live via daemon (busctl call RemoveHost)',
      unit: 'ms',
      xs: del,
    });
    out.push({
      key: 'daemon.add.send',
      what: 'add 1 reservation live via daemon (dbus-send AddHost)',
      unit: 'ms',
      xs: sAdd,
    });
    out.push({
      key: 'daemon.del.send',
      what: 'remove 1 reservation live via daemon (dbus-send RemoveHost)',
      unit: 'ms',
      xs: sDel,
    });
    out.push({
      key: 'daemon.add.client',
      what: 'add 1 reservation live via daemon (in-process client)',
      unit: 'ms',
      xs: iAdd,
    });
    out.push({
      key: 'daemon.del.client',
      what: 'remove 1 reservation live via daemon (in-process client)',
      unit: 'ms',
      xs: iDel,
    });

    // File save → reconciled: the running network's file gains/loses a reservation (saved as an
    // editor does: temp + rename); done when dnsmasq's hostsfile shows it (written before SIGHUP).
    o.log('daemon: file save → reconciled');
    const saves: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      const withHost = r % 2 === 0;
      const tmp = `${configFile}.tmp~`;
      writeFileSync(tmp, defaultXmlWithHost(withHost));
      const t0 = performance.now();
      renameSync(tmp, configFile);
      for (;;) {
        let text = '';
        try {
          text = readFileSync(hostsfile, 'utf8');
        } catch {}
        if (text.includes(HOOK_MAC) === withHost) break;
        if (performance.now() - t0 > 10_000) throw new Error('file save: not reconciled within 10 s');
        await sleep(1);
      }
      saves.push(performance.now() - t0);
      await sleep(200);
    }
    out.push({
      key: 'watch.save',
      what: 'config file saved → reconciled (hostsfile updated)',
      unit: 'ms',
      xs: saves,
    });
    writeFileSync(configFile, DEFAULT_XML);
    await sleep(300);

    // The libvirt hook, as libvirtd runs it (argv + domain XML on stdin), daemon up: runs in the root
    // namespace and only talks to the bus, as under libvirtd.
    o.log('daemon: hooks (daemon up)');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      DBUS_SYSTEM_BUS_ADDRESS: o.bus.address,
      VIRTNET_CONFIG_DIR: configDir,
      VIRTNET_RUN_DIR: runDir,
      VIRTNET_HOOK_MAIN: hookMain,
    };
    const qemu = join(packageRoot(), 'hooks', 'qemu');
    const vm = (i: number, tap?: string) =>
      domainXml({
        name: `b${i}`,
        uuid: `00000000-0000-4000-8000-${(0xb000 + i).toString(16).padStart(12, '0')}`,
        mac: `52:54:00:b0:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
        bridge: 'virbr0',
        ...(tap ? { tap } : {}),
        metadata: meta(
          `<virtnet:interface index='0' ip='192.168.122.${10 + (i % 80)}'><virtnet:forward proto='tcp' host-port='${31000 + i}' guest-port='22'/></virtnet:interface>`,
        ),
      });
    const hook = async (prefix: string[], i: number, op: string, xml: string) => {
      // Timed by the shell timer: forked and exec'd with the XML on stdin, as libvirtd runs a hook.
      const r = await timedRun(
        [...prefix, qemu, `b${i}`, op, op === 'stopped' || op === 'release' ? 'end' : 'begin', '-'],
        { input: xml, env },
      );
      if (r.code !== 0) throw new Error(`hook ${op}: exit ${r.code}: ${r.stderr}`);
      return r.ms;
    };
    const lifecycle = async (prefix: string[], runs: number, first: number) => {
      const ops: Record<string, number[]> = { prepare: [], start: [], started: [], stopped: [], release: [] };
      for (let k = 0; k < runs; k++) {
        const i = first + k;
        ops.prepare!.push(await hook(prefix, i, 'prepare', vm(i)));
        ops.start!.push(await hook(prefix, i, 'start', vm(i, `vnet${i}`)));
        ops.started!.push(await hook(prefix, i, 'started', vm(i, `vnet${i}`)));
        ops.stopped!.push(await hook(prefix, i, 'stopped', vm(i)));
        ops.release!.push(await hook(prefix, i, 'release', vm(i)));
      }
      return ops;
    };
    const shFloor: number[] = [];
    const sendFloor: number[] = [];
    for (let k = 0; k < o.runs; k++) {
      shFloor.push(await timeRun(['sh', '-c', 'true']));
      sendFloor.push(await timeRun(DBUS_SEND_FLOOR, { env }));
    }
    out.push({ key: 'hook.floor.sh', what: 'floor: sh -c true', unit: 'ms', xs: shFloor });
    out.push({
      key: 'hook.floor.dbus-send',
      what: 'floor: one dbus-send call (what the hook makes)',
      unit: 'ms',
      xs: sendFloor,
    });
    await lifecycle([], 1, 0); // warm-up
    const up = await lifecycle([], o.runs, 1);
    const HOOK_NOTE: Record<string, string> = {
      prepare: 'reservation checked',
      start: 'reservation + SIGHUP + DNAT rules',
      started: '',
      stopped: 'forward removed',
      release: 'reservation removed',
    };
    for (const [op, xs] of Object.entries(up))
      out.push({
        key: `hook.up.${op}`,
        what: `hook qemu ${op}, daemon up`,
        unit: 'ms',
        xs,
        ...(HOOK_NOTE[op] ? { note: HOOK_NOTE[op] } : {}),
      });
    await netCall('Stop');

    // 100 networks defined and up through the daemon; RSS.
    const ino = inotifyFree();
    o.log(
      `daemon: 100 networks (inotify instances free: ${ino.free} of ${ino.limit}; each dnsmasq takes one)`,
    );
    for (let i = 0; i < 100; i++) await call(MANAGER_PATH, MANAGER_IFACE, 'DefineNetwork', 's', [netXml(i)]);
    const ups: number[] = [];
    const downs: number[] = [];
    let rss100: number[] = [];
    for (let r = 0; r < o.heavyRuns; r++) {
      ups.push(
        await time(() =>
          Promise.all(
            Array.from({ length: 100 }, (_, i) =>
              call(`${MANAGER_PATH}/network/b${i}`, NETWORK_IFACE, 'Start'),
            ),
          ),
        ),
      );
      if (r === 0) {
        // Settled: the daemon collects garbage once it has been idle for 1 s after a change (idle-gc.ts).
        await sleep(2500);
        rss100 = await rssSamples(pid, 5);
      }
      downs.push(
        await time(() =>
          Promise.all(
            Array.from({ length: 100 }, (_, i) =>
              call(`${MANAGER_PATH}/network/b${i}`, NETWORK_IFACE, 'Stop'),
            ),
          ),
        ),
      );
    }
    out.push({
      key: 'daemon.up.100',
      what: '100 networks up via daemon (100 Start calls at once)',
      unit: 'ms',
      xs: ups,
    });
    out.push({
      key: 'daemon.down.100',
      what: '100 networks down via daemon (100 Stop calls at once)',
      unit: 'ms',
      xs: downs,
    });
    out.push({ key: 'daemon.rss.100', what: 'daemon RSS, 100 networks up', unit: 'MB', xs: rss100 });

    // Daemon down: the hook's in-process fallback (node) runs in the netns (it changes the network
    // itself), `ip netns exec` included (its floor is shown). The network stays up when the daemon
    // stops (it never takes networks down on exit).
    o.log('daemon: hooks (daemon down)');
    await netCall('Start');
    conn.disconnect();
    conn = undefined;
    await daemon.stop('SIGTERM');
    daemon = undefined;
    const inNs = ['ip', 'netns', 'exec', o.ns.name];
    const fr = Math.max(3, Math.ceil(o.runs / 2));
    const nsFloor: number[] = [];
    for (let k = 0; k < fr; k++) nsFloor.push(await timeRun([...inNs, 'true']));
    await lifecycle(inNs, 1, 400); // warm-up
    const down = await lifecycle(inNs, fr, 500);
    out.push({ key: 'hook.down.floor', what: 'floor: ip netns exec … true', unit: 'ms', xs: nsFloor });
    for (const op of ['prepare', 'start', 'release'])
      out.push({
        key: `hook.down.${op}`,
        what: `hook qemu ${op}, daemon down (in-process fallback)`,
        unit: 'ms',
        xs: down[op]!,
      });
  } finally {
    conn?.disconnect();
    await daemon?.stop('SIGTERM');
    rmSync(runDir, { recursive: true, force: true });
  }
}
