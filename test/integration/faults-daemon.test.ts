/**
 * Faults of the real virtnetd (real engine in a vh9- netns, private system bus):
 * - dnsmasq killed (-9) under the daemon: a new dnsmasq serves within 1 s (a guest renews its lease)
 *   and the daemon still reports the lease (the supervisor's own variant, with lease-file checks, is
 *   test/integration/dnsmasq-supervisor.test.ts "kill -9: restarted and serving within 1 s");
 * - kill -9 of the daemon at ≥ 20 random points of Start/Stop/AddHost/RemoveHost (a random delay
 *   after the call was sent, from a seeded schedule printed in the output), then a new daemon: the
 *   network is either fully up (namespace identical to the reference "up" snapshot: one bridge, one
 *   dnsmasq, the rules once) or fully down (identical to the reference "down" snapshot), as the
 *   daemon reports it; an acknowledged change is never lost (an acknowledged Start is up, an
 *   acknowledged Stop is down, an acknowledged reservation is in the hostsfile, a removed one is not);
 *   the hostsfile has no duplicate line and matches the reservations;
 * - the bus restarted (dbus-daemon killed, a new one on the same socket): the daemon reconnects, owns
 *   its name again and answers calls, the network untouched.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUS_NAME,
  busctl,
  MANAGER_IFACE,
  MANAGER_PATH,
  NETWORK_IFACE,
  nameHasOwner,
  type PrivateBus,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { inCI } from '../helpers/shared.js';
import { type Transpiled, transpileSources } from '../hooks/transpile.js';
import { settle, snapshot } from './engine-harness.js';

const skip = missingPrereqs(['ip', 'dbus-daemon', 'busctl', 'dnsmasq', 'nft', 'busybox']);

const NET = 'vh9-flt';
const BRIDGE = 'vh9brf';
const NET_PATH = `${MANAGER_PATH}/network/vh9_2dflt`;
const NET_XML = `<network>
  <name>${NET}</name>
  <forward mode='nat'/>
  <bridge name='${BRIDGE}' stp='off' delay='0'/>
  <mac address='52:54:00:5a:09:f1'/>
  <ip address='10.93.0.1' prefix='24'>
    <dhcp><range start='10.93.0.100' end='10.93.0.200'/><host mac='52:54:00:09:0f:01' name='fixed' ip='10.93.0.5'/></dhcp>
  </ip>
</network>
`;
const GUEST_MAC = '52:54:00:09:0f:aa';

/**
 * The namespace state without interface indexes (a re-created bridge gets a new one) and in a stable
 * line order.
 */
async function state(ns: Netns): Promise<Record<string, string>> {
  const snap = await snapshot(ns);
  for (const k of ['links', 'addrs'])
    snap[k] = snap[k]!.replace(/^\d+: /gm, '')
      .replace(/@if\d+/g, '')
      .split('\n')
      .sort()
      .join('\n');
  return snap;
}

/** A tiny seeded PRNG (mulberry32): the schedule is reproducible from the printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.skipIf(skip)(
  'virtnetd faults: dnsmasq killed, daemon killed at random points, bus restarted',
  () => {
    let bus: PrivateBus;
    let host: Netns;
    let guest: Netns;
    let base: string;
    let dirs: { configDir: string; stateDir: string; runDir: string };
    let daemon: VirtnetdProcess | undefined;
    let upSnap: Record<string, string>;
    let downSnap: Record<string, string>;
    let bus2: ChildProcess | undefined;

    let build!: Transpiled;
    // Restarted ~25 times: the transpiled sources start several times faster than under the TS loader.
    const start = () =>
      startVirtnetd({
        bus,
        ...dirs,
        netns: host.name,
        logLevel: 'warning',
        compiledEntry: join(build.dir, 'src', 'bin', 'virtnetd.js'),
      });
    const call = (path: string, iface: string, member: string, sig?: string, ...args: string[]) =>
      busctl(bus, ['call', BUS_NAME, path, iface, member, ...(sig ? [sig, ...args] : [])]);
    const active = async () =>
      (await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active'])).stdout.trim() ===
      'b true';
    const hostsfile = () => {
      try {
        return readFileSync(join(dirs.runDir, 'dnsmasq', `${NET}.hostsfile`), 'utf8');
      } catch {
        return '';
      }
    };
    const dnsmasqPid = () => {
      try {
        return Number(readFileSync(join(dirs.runDir, 'dnsmasq', `${NET}.pid`), 'utf8').trim());
      } catch {
        return 0;
      }
    };
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };

    beforeAll(async () => {
      build = transpileSources('vh9-build-');
      bus = await startPrivateBus({ tempPrefix: 'vh9-bus-' });
      host = await createNetns('vh9-fd');
      guest = await createNetns('vh9-fg');
      await link(host, 'vnet0', guest, 'eth0', { macB: GUEST_MAC });
      await settle(host);
      base = mkdtempSync(join(tmpdir(), 'vh9-faults-'));
      chmodSync(base, 0o755);
      dirs = { configDir: join(base, 'networks'), stateDir: join(base, 'state'), runDir: join(base, 'run') };
      mkdirSync(dirs.configDir, { recursive: true });
      writeFileSync(join(dirs.configDir, `${NET}.xml`), NET_XML);
      downSnap = await state(host);
      daemon = await start();
      const r = await call(NET_PATH, NETWORK_IFACE, 'Start');
      expect(r.code, `${r.stderr}\n${daemon.output()}`).toBe(0);
      await host.exec(['ip', 'link', 'set', 'vnet0', 'master', BRIDGE]);
      await settle(host);
      upSnap = await state(host);
    }, 180_000);

    afterAll(async () => {
      await daemon?.stop('SIGTERM');
      bus2?.kill('SIGKILL');
      cleanupAllNetns();
      await bus?.stop();
      if (base) rmSync(base, { recursive: true, force: true });
      build?.remove();
    });

    it('dnsmasq killed -9 under the daemon: serving again within 1 s, lease kept', async () => {
      const lease = await guestDhcp(guest, 'eth0', { tries: 8 });
      const pid1 = dnsmasqPid();
      expect(alive(pid1)).toBe(true);
      const t0 = Date.now();
      process.kill(pid1, 'SIGKILL');
      let pid2 = 0;
      while (Date.now() - t0 < 1000) {
        pid2 = dnsmasqPid();
        if (pid2 && pid2 !== pid1 && alive(pid2)) break;
        await sleep(20);
      }
      const restartedMs = Date.now() - t0;
      expect(pid2).not.toBe(pid1);
      expect(alive(pid2)).toBe(true);
      // Serving: the guest renews its address from the new dnsmasq.
      const renewed = await guestDhcp(guest, 'eth0', { requestIp: lease.ip, tries: 3, timeoutSec: 1 });
      const servingMs = Date.now() - t0;
      console.log(`dnsmasq restarted after ${restartedMs} ms, lease renewed ${servingMs} ms after the kill`);
      expect(restartedMs).toBeLessThan(1000);
      expect(renewed.ip).toBe(lease.ip);
      const leases = await call(NET_PATH, NETWORK_IFACE, 'GetLeases');
      expect(leases.stdout).toContain(lease.ip);
      expect(leases.stdout.toLowerCase()).toContain(GUEST_MAC);
      // Detach the guest port again so the reference snapshots stay valid (its lease is in the file).
    }, 60_000);

    it('kill -9 of the daemon at ≥ 20 random points: consistent after restart, nothing lost or duplicated', async () => {
      // Fixed under CI (reproducible, like the fast-check seed); random locally, printed either way.
      const seed = Number(process.env.VIRTNET_FAULT_SEED ?? (inCI ? 20261127 : Date.now() % 100_000));
      const rnd = prng(seed);
      console.log(`kill schedule seed ${seed} (VIRTNET_FAULT_SEED=${seed} reproduces it)`);
      // Reservations that must be there (acknowledged AddHost) or not (acknowledged RemoveHost).
      const must = new Map<string, string>(); // mac -> ip
      const maybe = new Set<string>();
      let wantActive: boolean | undefined = true;
      let nextHost = 1;
      const log: string[] = [];
      const POINTS = 22;
      for (let k = 0; k < POINTS; k++) {
        const up = await active();
        let member: string;
        let args: string[] = [];
        let mac = '';
        if (!up) member = 'Start';
        else {
          const x = rnd();
          if (x < 0.25) member = 'Stop';
          else if (x < 0.7 || must.size === 0) {
            member = 'AddHost';
            const n = nextHost++;
            mac = `52:54:00:09:1${(n >> 8) & 15}:${(n & 255).toString(16).padStart(2, '0')}`;
            args = ['sss', mac, `10.93.0.${10 + (n % 80)}`, `r${n}`];
          } else {
            member = 'RemoveHost';
            mac = [...must.keys()][Math.floor(rnd() * must.size)]!;
            args = ['s', mac];
          }
        }
        const delay = Math.floor(rnd() * 160);
        const sent = busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, member, ...args]);
        await sleep(delay);
        const pid = daemon!.pid;
        process.kill(pid, 'SIGKILL');
        await daemon!.stop('SIGKILL', 2000);
        const r = await sent;
        const acked = r.code === 0;
        log.push(
          `${k}: ${member}${mac ? ` ${mac}` : ''} killed after ${delay} ms → ${acked ? 'acknowledged' : 'no reply'}`,
        );
        if (member === 'Start') {
          wantActive = acked ? true : undefined;
          if (acked) {
            must.clear();
            maybe.clear();
          }
        } else if (member === 'Stop') wantActive = acked ? false : undefined;
        else if (member === 'AddHost') {
          if (acked) must.set(mac, args[2]!);
          else maybe.add(mac);
        } else if (member === 'RemoveHost') {
          must.delete(mac);
          if (!acked) maybe.add(mac);
        }

        const tRestart = Date.now();
        daemon = await start();
        const restartMs = Date.now() - tRestart;
        const nowUp = await active();
        log[log.length - 1] += `; restarted in ${restartMs} ms, ${nowUp ? 'up' : 'down'}`;
        if (wantActive !== undefined) expect(nowUp, `${log.join('\n')}\n${daemon.output()}`).toBe(wantActive);
        await settle(host);
        // The namespace is exactly one of the two reference states (the guest port re-attached by
        // nobody: the adopted bridge keeps it; a re-created one does not).
        if (nowUp) {
          const ports = (await host.exec(['ip', '-o', 'link', 'show', 'master', BRIDGE])).stdout;
          if (!ports.includes('vnet0')) await host.exec(['ip', 'link', 'set', 'vnet0', 'master', BRIDGE]);
          await settle(host);
          expect(await state(host), log.join('\n')).toEqual(upSnap);
          const lines = hostsfile().split('\n').filter(Boolean);
          expect(new Set(lines).size, `duplicate hostsfile line:\n${lines.join('\n')}`).toBe(lines.length);
          const macs = lines.map((l) => l.split(',')[0]!.toLowerCase());
          expect(new Set(macs).size).toBe(macs.length);
          for (const [m] of must) expect(macs, `${log.join('\n')}\nlost ${m}`).toContain(m);
          // Nothing but the XML's host, acknowledged reservations and the uncertain ones.
          for (const m of macs)
            expect(m === '52:54:00:09:0f:01' || must.has(m) || maybe.has(m), `unexpected ${m}`).toBe(true);
          // What is in the file is what the daemon keeps (the next change rewrites from that).
          for (const m of macs) if (maybe.has(m)) must.set(m, '?');
          maybe.clear();
        } else {
          await host.exec(['ip', 'link', 'set', 'vnet0', 'nomaster'], { allowFail: true });
          const now = await state(host);
          expect(now, log.join('\n')).toEqual(downSnap);
          expect(hostsfile()).toBe('');
          must.clear();
          maybe.clear();
        }
      }
      console.log(`kill points: ${POINTS}\n${log.join('\n')}`);
      expect(log.length).toBeGreaterThanOrEqual(20);
      // At least some kills landed mid-operation and some after it.
      expect(log.some((l) => l.includes('no reply'))).toBe(true);
      expect(log.some((l) => l.includes('acknowledged'))).toBe(true);
      // Leave it up for the bus test.
      if (!(await active())) {
        const r = await call(NET_PATH, NETWORK_IFACE, 'Start');
        expect(r.code, r.stderr).toBe(0);
      }
    }, 400_000);

    it('the bus restarted: the daemon reconnects, owns its name again and answers; the network untouched', async () => {
      expect(await nameHasOwner(bus, BUS_NAME)).toBe(true);
      await settle(host);
      const before = await state(host);
      const pid = daemon!.pid;
      process.kill(bus.pid, 'SIGKILL');
      await sleep(300);
      rmSync(bus.socketPath, { force: true });
      bus2 = spawn(
        'dbus-daemon',
        [`--config-file=${bus.configFile}`, '--nofork', '--nopidfile', '--print-address=1'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('new dbus-daemon did not start')), 10_000);
        bus2!.stdout!.once('data', () => {
          clearTimeout(t);
          resolve();
        });
      });
      const t0 = Date.now();
      while (Date.now() - t0 < 20_000 && !(await nameHasOwner(bus, BUS_NAME))) await sleep(100);
      const ms = Date.now() - t0;
      expect(await nameHasOwner(bus, BUS_NAME), daemon!.output().slice(-3000)).toBe(true);
      console.log(`daemon owned ${BUS_NAME} again ${ms} ms after the new bus started`);
      expect(daemon!.pid).toBe(pid);
      expect(daemon!.exited()).toBe(false);
      expect(await active()).toBe(true);
      // A mutating call works end to end on the new bus.
      const add = await call(
        NET_PATH,
        NETWORK_IFACE,
        'AddHost',
        'sss',
        '52:54:00:09:2f:01',
        '10.93.0.99',
        'afterbus',
      );
      expect(add.code, add.stderr).toBe(0);
      expect(hostsfile()).toContain('52:54:00:09:2f:01');
      const rm = await call(NET_PATH, NETWORK_IFACE, 'RemoveHost', 's', '52:54:00:09:2f:01');
      expect(rm.code, rm.stderr).toBe(0);
      const v = await busctl(bus, ['get-property', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'Version']);
      expect(v.code).toBe(0);
      await settle(host);
      expect(await state(host)).toEqual(before);
    }, 60_000);
  },
);
