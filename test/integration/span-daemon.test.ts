/**
 * A spanning network through the daemons: two "host" namespaces of the span topology, each with its
 * own private system bus and its own virtnetd (real engine inside the host namespace), the same
 * network XML defined on both through the bus. The gateway host's virtnetd runs the full network,
 * the member's only the bridge + VXLAN port; a guest behind the member leases from the gateway.
 * `virtnetctl info` and the Span property show each host's role. Nothing touches the root namespace.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { captureIo } from '../cli/io.js';
import {
  BUS_NAME,
  busctl,
  MANAGER_IFACE,
  MANAGER_PATH,
  NETWORK_IFACE,
  type PrivateBus,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { cleanupAllNetns, guestDhcp } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import {
  GUEST_MACS,
  ping,
  RESERVED,
  type SpanTopology,
  spanTopology,
  spanXml,
  UNDERLAY,
  underlay,
} from './span-harness.js';

const skip = missingPrereqs(['ip', 'bridge', 'dbus-daemon', 'busctl', 'dnsmasq', 'busybox', 'nft']);
const NET_PATH = `${MANAGER_PATH}/network/lab`;

describe.skipIf(skip)('span through virtnetd: one private bus and one daemon per host', () => {
  let t: SpanTopology;
  const buses: PrivateBus[] = [];
  const daemons: VirtnetdProcess[] = [];
  let base: string;

  const call = (i: number, path: string, iface: string, member: string, ...args: string[]) =>
    busctl(buses[i]!, ['--json=short', 'call', BUS_NAME, path, iface, member, ...args]);

  async function cli(i: number, argv: string[]) {
    const io = captureIo();
    io.env = { DBUS_SYSTEM_BUS_ADDRESS: buses[i]!.address };
    const code = await main(argv, io);
    return { code, out: io.out, err: io.err };
  }

  beforeAll(async () => {
    t = await spanTopology();
    base = mkdtempSync(join(tmpdir(), 'vsp-daemon-'));
    chmodSync(base, 0o755);
    for (let i = 0; i < 2; i++) {
      const bus = await startPrivateBus();
      buses.push(bus);
      const d = join(base, `h${i + 1}`);
      daemons.push(
        await startVirtnetd({
          bus,
          configDir: join(d, 'networks'),
          stateDir: join(d, 'state'),
          runDir: join(d, 'run'),
          netns: t.hosts[i]!.name,
        }),
      );
    }
  }, 120_000);

  afterAll(async () => {
    for (const d of daemons) await d.stop('SIGTERM').catch(() => {});
    cleanupAllNetns();
    for (const b of buses) await b.stop().catch(() => {});
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('the same XML defined on both hosts starts as gateway on one and member on the other', async () => {
    for (let i = 0; i < 2; i++) {
      const def = await call(i, MANAGER_PATH, MANAGER_IFACE, 'DefineNetwork', 's', spanXml('vxlan'));
      expect(def.code, def.stderr + daemons[i]!.output()).toBe(0);
      const inactive = await busctl(buses[i]!, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Span']);
      expect(inactive.stdout.trim()).toBe(
        `s "vxlan VNI 10100: gateway ${UNDERLAY[0]}, members ${UNDERLAY[1]}, ${UNDERLAY[2]}"`,
      );
      const st = await call(i, NET_PATH, NETWORK_IFACE, 'Start');
      expect(st.code, st.stderr + daemons[i]!.output()).toBe(0);
    }
    const p = await busctl(buses[1]!, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Span']);
    expect(p.stdout.trim()).toBe(
      `s "member (${UNDERLAY[1]}) of vxlan VNI 10100 on vx10100: gateway ${UNDERLAY[0]}, members ${UNDERLAY[1]}, ${UNDERLAY[2]}"`,
    );
    const info = await cli(0, ['info', 'lab']);
    expect(info.code, info.err).toBe(0);
    expect(info.out).toContain(
      `Span:      gateway (${UNDERLAY[0]}) of vxlan VNI 10100 on vx10100: gateway ${UNDERLAY[0]}, members`,
    );
    expect((await t.hosts[1]!.exec(['ip', '-o', 'addr', 'show', 'dev', 'vsp0'])).stdout.trim()).toBe('');
  });

  it("a guest behind the member leases from the gateway's dnsmasq and reaches the gateway", async () => {
    await t.hosts[1]!.exec(['ip', 'link', 'set', 'vnet0', 'master', 'vsp0']);
    const lease = await guestDhcp(t.guests[1]!, 'eth0');
    expect(lease.ip).toBe(RESERVED[1]);
    expect(lease.serverId).toBe('10.88.0.1');
    expect(await ping(t.guests[1]!, '10.88.0.1')).toBe(true);
  });

  it('GetSpanPeers and virtnetctl info: each peer reachable or not (a probe), the MACs behind it', async () => {
    const peers = async (i: number) => {
      const r = await call(i, NET_PATH, NETWORK_IFACE, 'GetSpanPeers');
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout).data[0] as [string, string, string, string[]][];
    };
    // On the member: the gateway's bridge answered DHCP and ping, so its MAC is learned behind it.
    // Host 3 runs no daemon but its underlay address answers: reachable, nothing learned behind it.
    const m = await peers(1);
    expect(m.map(([a, role, state]) => `${a} ${role} ${state}`)).toEqual([
      `${UNDERLAY[0]} gateway reachable`,
      `${UNDERLAY[2]} member reachable`,
    ]);
    expect(m[0]![3]).toContain('52:54:00:5a:10:01');
    expect(m[1]![3]).toEqual([]);
    // On the gateway: the guest behind the member.
    const g = await peers(0);
    expect(g[0]!.slice(0, 3)).toEqual([UNDERLAY[1], 'member', 'reachable']);
    expect(g[0]![3]).toContain(GUEST_MACS[1]);
    // Host 3 cut off the underlay: unreachable (within the probe's 1 s).
    await underlay(t, 2, false);
    try {
      const t0 = performance.now();
      expect((await peers(1)).map(([a, , state]) => `${a} ${state}`)).toEqual([
        `${UNDERLAY[0]} reachable`,
        `${UNDERLAY[2]} unreachable`,
      ]);
      console.log(`span vxlan: GetSpanPeers with one peer down ${(performance.now() - t0).toFixed(0)} ms`);
      const info = await cli(1, ['info', 'lab']);
      expect(info.code, info.err).toBe(0);
      expect(info.out).toMatch(
        new RegExp(
          `^Peers: {5}${UNDERLAY[0]} gateway reachable, \\d+ MACs?: .*52:54:00:5a:10:01.*\\n {11}${UNDERLAY[2]} member unreachable, no MACs$`,
          'm',
        ),
      );
    } finally {
      await underlay(t, 2, true);
    }
  });

  it('stop through the bus on both hosts', async () => {
    await t.guests[1]!.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
    for (let i = 0; i < 2; i++) {
      const r = await call(i, NET_PATH, NETWORK_IFACE, 'Stop');
      expect(r.code, r.stderr).toBe(0);
      expect(
        (await t.hosts[i]!.exec(['ip', 'link', 'show', 'vx10100'], { allowFail: true })).exitCode,
      ).not.toBe(0);
    }
  });
});
