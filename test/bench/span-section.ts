/**
 * Spanning networks (`<virtnet:span>`): three "host" namespaces on an underlay bridge, one engine per
 * host (the compiled test driver, dist/test/integration/engine-driver.js, inside each), a guest with a
 * fixed address behind each host. Per mode (vxlan; evpn when FRR is installed, with zebra + bgpd per
 * host): the engine's start on a member, the time from the first host's start until a guest behind a
 * member reaches a guest behind the gateway host (evpn: until every flood list is complete, FRR
 * converged), and the migration gap (a guest's NIC moved from host 1 to host 2 until host 3's guest
 * gets a reply). A fresh topology per run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { renderEvpnBgpSnippet } from '../../src/frr/evpn.js';
import { spanRole } from '../../src/model/span.js';
import { packageRoot } from '../../src/util/package.js';
import { startFrr } from '../helpers/frr.js';
import type { Netns } from '../helpers/netns.js';
import { spanNetwork, spanTopology, UNDERLAY } from '../integration/span-harness.js';
import type { Sample } from './lib.js';

class Driver {
  private next = 1;
  private readonly waiting = new Map<
    number,
    (r: { ok: boolean; result?: unknown; error?: string }) => void
  >();
  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        const r = JSON.parse(l) as { id: number; ok: boolean; result?: unknown; error?: string };
        this.waiting.get(r.id)?.(r);
        this.waiting.delete(r.id);
      } catch {
        // not a reply
      }
    });
  }
  static spawn(ns: Netns): Driver {
    const js = join(packageRoot(), 'dist', 'test', 'integration', 'engine-driver.js');
    if (!existsSync(js)) throw new Error(`span: ${js} missing (npm run build)`);
    return new Driver(
      spawn('ip', ['netns', 'exec', ns.name, process.execPath, js], { stdio: ['pipe', 'pipe', 'inherit'] }),
    );
  }
  call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (r) => (r.ok ? resolve(r.result as T) : reject(new Error(`${op}: ${r.error}`))));
      this.child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }
  end(): void {
    this.child.stdin!.end();
  }
}

const GUEST_IPS = ['10.88.0.11', '10.88.0.12', '10.88.0.13'];

async function pingOk(from: Netns, ip: string): Promise<boolean> {
  return (await from.exec(['busybox', 'ping', '-c', '1', '-W', '1', ip], { allowFail: true })).exitCode === 0;
}

async function until(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!(await fn())) {
    if (performance.now() > end) throw new Error(`span: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function floodsComplete(hosts: Netns[]): Promise<boolean> {
  for (let i = 0; i < hosts.length; i++) {
    const out = (await hosts[i]!.exec(['bridge', 'fdb', 'show', 'dev', 'vx10100'], { allowFail: true }))
      .stdout;
    const have = [...out.matchAll(/^00:00:00:00:00:00 dst (\S+)/gm)].map((m) => m[1]).sort();
    if (have.join() !== UNDERLAY.filter((_, j) => j !== i).join()) return false;
  }
  return true;
}

async function oneRun(mode: 'vxlan' | 'evpn', xs: Record<string, number[]>): Promise<void> {
  const net = spanNetwork(mode);
  const t = await spanTopology();
  const drivers: Driver[] = [];
  const frr: { stop(): Promise<void> }[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const h = t.hosts[i]!;
      chmodSync(h.dir, 0o755); // dnsmasq (nobody) and FRR (frr) reach their files under it
      await t.guests[i]!.addAddr('eth0', `${GUEST_IPS[i]}/24`);
      if (mode === 'evpn')
        frr.push(await startFrr(h, renderEvpnBgpSnippet(net.span!, spanRole(net, [UNDERLAY[i]!]))));
      const d = Driver.spawn(h);
      drivers.push(d);
      await d.call('create', {
        runDir: join(h.dir, 'run'),
        firewall: 'nftables',
        frrVtysh: ['vtysh', '--vty_socket', join(h.dir, 'frr')],
      });
    }
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) {
      const r = await drivers[i]!.call<{ ms: number }>('timed', { op: 'start', args: [net] });
      if (i > 0) xs.member!.push(r.ms);
      await drivers[i]!.call('attachPort', 'lab', 'vnet0');
    }
    if (mode === 'evpn') await until(() => floodsComplete(t.hosts), 30000, 'EVPN flood lists');
    await until(() => pingOk(t.guests[1]!, GUEST_IPS[0]!), 30000, 'guest 2 → guest 1');
    xs.up!.push(performance.now() - t0);
    // Migration: guest 1's NIC from host 1 to host 2; the guest announces itself (as QEMU does).
    await until(() => pingOk(t.guests[2]!, GUEST_IPS[0]!), 30000, 'guest 3 → guest 1');
    const m0 = performance.now();
    await drivers[0]!.call('detachPort', 'lab', 'vnet0');
    await t.hosts[0]!.exec(['ip', 'link', 'set', 'vnet0', 'name', 'vmig']);
    await t.hosts[0]!.exec(['ip', 'link', 'set', 'vmig', 'netns', t.hosts[1]!.name]);
    await drivers[1]!.call('attachPort', 'lab', 'vmig');
    await t.guests[0]!.exec(['busybox', 'arping', '-U', '-c', '1', '-I', 'eth0', GUEST_IPS[0]!], {
      allowFail: true,
    });
    await until(() => pingOk(t.guests[2]!, GUEST_IPS[0]!), 30000, 'moved guest');
    xs.gap!.push(performance.now() - m0);
  } finally {
    for (const d of drivers) d.end();
    for (const f of frr) await f.stop().catch(() => {});
    for (const ns of [t.ul, t.inet, ...t.hosts, ...t.guests]) ns.cleanup();
  }
}

export async function spanSection(
  runs: number,
  withEvpn: boolean,
  log: (s: string) => void,
): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const mode of withEvpn ? (['vxlan', 'evpn'] as const) : (['vxlan'] as const)) {
    const xs: Record<string, number[]> = { member: [], up: [], gap: [] };
    for (let r = 0; r < runs; r++) {
      log(`span ${mode}: run ${r + 1} of ${runs}`);
      await oneRun(mode, xs);
    }
    out.push(
      {
        key: `span.${mode}.member`,
        what: `${mode}: engine start of the network on a member host`,
        unit: 'ms',
        xs: xs.member!,
      },
      {
        key: `span.${mode}.up`,
        what:
          mode === 'evpn'
            ? 'evpn: first start → FRR converged (all flood lists) and member guest reaches gateway guest'
            : 'vxlan: first start → guest behind a member reaches guest behind the gateway host',
        unit: 'ms',
        xs: xs.up!,
        note: 'three hosts, one after the other',
      },
      {
        key: `span.${mode}.gap`,
        what: `${mode}: migration gap, NIC host 1 → host 2 until host 3's guest gets a reply`,
        unit: 'ms',
        xs: xs.gap!,
        note: 'ping -W 1 per try',
      },
    );
  }
  return out;
}
