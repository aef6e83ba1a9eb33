/**
 * One network across three hosts over kernel VXLAN (`<virtnet:span mode='vxlan'>`), with real parts:
 * three "host" namespaces on an underlay bridge (192.0.2.11–13), each with its own engine (the driver
 * runs inside it) and the SAME network definition; a guest namespace behind each host's bridge; an
 * "internet" namespace behind the gateway host. Nothing touches the root namespace.
 *
 * Proves: roles from the local address (gateway = full network + VXLAN port; members = bare bridge +
 * VXLAN port, no address, dnsmasq or NAT); every guest leases from the gateway's one dnsmasq, resolves
 * the others by name (reservations from the shared XML, and a name sent in DHCP), pings them across
 * hosts and reaches the internet through the gateway's NAT; a member down leaves the others working;
 * the gateway down leaves member-to-member traffic working; a restarted engine adopts the span and
 * re-creates a vanished VXLAN port; stop leaves every host as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import { cleanupAllNetns, guestDhcp, type Netns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { EngineDriver, peerEcho, runDirFor, settle, snapshot, tcpProbe, waitFor } from './engine-harness.js';
import {
  GUEST_MACS as MACS,
  ping,
  RESERVED,
  resolveName as resolve,
  type SpanTopology,
  spanNetwork,
  spanTopology,
  UNDERLAY,
  underlay,
} from './span-harness.js';

const skip = missingPrereqs(['ip', 'bridge', 'nft', 'dnsmasq', 'busybox', 'node']);

describe.skipIf(skip)('span: one network over VXLAN across three hosts', () => {
  let t: SpanTopology;
  let inet: Netns;
  let hosts: Netns[] = [];
  let guests: Netns[] = [];
  const engines: EngineDriver[] = [];
  const before: Record<string, string>[] = [];
  const runDirs: string[] = [];
  const ips: string[] = [];
  let net: Network;

  beforeAll(async () => {
    net = spanNetwork('vxlan');
    t = await spanTopology();
    ({ inet, hosts, guests } = t);
    for (const h of hosts) {
      await settle(h);
      before.push(await snapshot(h));
      runDirs.push(await runDirFor(h));
      const e = EngineDriver.spawn(h);
      engines.push(e);
      await e.call('create', { runDir: runDirs[runDirs.length - 1], firewall: 'nftables' });
    }
  });

  afterAll(async () => {
    for (const e of engines) await e.end().catch(() => {});
    cleanupAllNetns();
  });

  it('the same definition starts as gateway on host 1 and as member on hosts 2 and 3', async () => {
    const infos: Record<string, unknown>[] = [];
    const t0 = performance.now();
    const ms: string[] = [];
    for (const e of engines) {
      const r = await e.call<{ ms: number; result: Record<string, unknown> }>('timed', {
        op: 'start',
        args: [net],
      });
      infos.push(r.result);
      ms.push(r.ms.toFixed(0));
    }
    console.log(`span vxlan: start per host (gateway, member, member) ${ms.join(' / ')} ms`);
    expect(infos.map((i) => (i.span as { role: string }).role)).toEqual(['gateway', 'member', 'member']);
    expect(infos[1]!.span).toEqual({
      mode: 'vxlan',
      vni: 10100,
      role: 'member',
      gateway: UNDERLAY[0],
      local: UNDERLAY[1],
      remotes: [UNDERLAY[0], UNDERLAY[2]],
      port: 'vx10100',
    });
    expect(infos[0]!.dnsmasqPid).toBeGreaterThan(0);
    for (const i of [1, 2]) {
      const h = hosts[i]!;
      expect(infos[i]!.dnsmasqPid).toBeUndefined();
      // A bare bridge: no address, its own MAC, no NAT.
      expect((await h.exec(['ip', '-o', 'addr', 'show', 'dev', 'vsp0'])).stdout.trim()).toBe('');
      expect(await h.mac('vsp0')).not.toBe('52:54:00:5a:10:01');
      expect((await h.exec(['nft', 'list', 'ruleset'])).stdout).not.toMatch(/masquerade/);
    }
    expect((await hosts[0]!.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'vsp0'])).stdout).toContain(
      '10.88.0.1/24',
    );
    for (const h of hosts) {
      const d = (await h.exec(['ip', '-d', 'link', 'show', 'vx10100'])).stdout;
      expect(d).toContain('master vsp0');
      expect(d).toMatch(/vxlan id 10100 local 192\.0\.2\.1\d/);
      const fdb = (await h.exec(['bridge', 'fdb', 'show', 'dev', 'vx10100'])).stdout;
      const floods = [...fdb.matchAll(/^00:00:00:00:00:00 dst (\S+)/gm)].map((m) => m[1]).sort();
      expect(floods).toEqual(UNDERLAY.filter((_, j) => j !== hosts.indexOf(h)));
    }
    for (const e of engines) await e.call('attachPort', 'lab', 'vnet0');
    console.log(
      `span vxlan: three hosts started, checked and ports attached in ${(performance.now() - t0).toFixed(0)} ms`,
    );
    // A member serves no DHCP: a live reservation there is refused with a clear line.
    const r = await engines[2]!.raw('addHost', 'lab', { mac: '52:54:00:aa:10:09', ip: '10.88.0.59' });
    expect(r.ok).toBe(false);
    expect(r.error).toBe(
      'network lab: this host is a member of a span; reservations and names are served by the gateway 192.0.2.11: put them into the shared definition (<ip><dhcp><host>) or let the guest send its name in DHCP',
    );
  });

  it("every guest leases from the gateway's dnsmasq, across the overlay", async () => {
    const l1 = await guestDhcp(guests[0]!, 'eth0');
    const l2 = await guestDhcp(guests[1]!, 'eth0');
    // Not reserved: a dynamic address, its name registered from DHCP option 12.
    const l3 = await guestDhcp(guests[2]!, 'eth0', { hostname: 'g3', tries: 10 });
    expect([l1.ip, l2.ip]).toEqual(RESERVED);
    expect(l3.ip).toMatch(/^10\.88\.0\.(1\d\d|200)$/);
    for (const l of [l1, l2, l3]) {
      expect(l.router).toBe('10.88.0.1');
      expect(l.serverId).toBe('10.88.0.1');
    }
    ips.push(l1.ip, l2.ip, l3.ip);
    const leases = await engines[0]!.call<{ mac: string; ip: string }[]>('leases', 'lab');
    expect(leases.map((l) => `${l.mac} ${l.ip}`).sort()).toEqual(MACS.map((m, i) => `${m} ${ips[i]}`).sort());
  });

  it('guests resolve each other by name and ping each other across hosts', async () => {
    expect(await resolve(guests[2]!, 'g1.lab')).toContain(ips[0]);
    expect(await resolve(guests[0]!, 'g2')).toContain(ips[1]);
    expect(await resolve(guests[1]!, 'g3.lab')).toContain(ips[2]);
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 3; b++) if (a !== b) expect(await ping(guests[a]!, ips[b]!)).toBe(true);
    // The kernel learned the remote guests' MACs behind the right hosts.
    const fdb = (await hosts[1]!.exec(['bridge', 'fdb', 'show', 'dev', 'vx10100'])).stdout;
    expect(fdb).toContain(`${MACS[0]} dst ${UNDERLAY[0]}`);
    expect(fdb).toContain(`${MACS[2]} dst ${UNDERLAY[2]}`);
  });

  it("a guest on a member reaches the internet through the gateway's NAT", async () => {
    const echo = peerEcho(inet, 8080);
    await waitFor(() => echo.output().stdout.includes('listening'), 5000, 'echo server');
    // The internet sees the gateway host's uplink address (masquerade), not the guest's.
    expect(await tcpProbe(guests[2]!, '198.51.100.1', 8080)).toBe('198.51.100.2');
    expect(await tcpProbe(guests[1]!, '198.51.100.1', 8080)).toBe('198.51.100.2');
    echo.kill();
  });

  it('a member down leaves the others working; the gateway down leaves member-to-member traffic', async () => {
    // A host "down": cut off from the underlay (its own links stay as they are, for the snapshot).
    await underlay(t, 2, false);
    expect(await ping(guests[0]!, ips[1]!)).toBe(true);
    expect(await ping(guests[1]!, ips[0]!)).toBe(true);
    expect(await ping(guests[1]!, ips[2]!)).toBe(false);
    expect((await guestDhcp(guests[1]!, 'eth0')).ip).toBe(ips[1]);
    await underlay(t, 2, true);
    await waitFor(() => ping(guests[1]!, ips[2]!), 10000, 'member 3 back');

    await underlay(t, 0, false);
    expect(await ping(guests[1]!, ips[2]!)).toBe(true);
    expect(await ping(guests[2]!, ips[1]!)).toBe(true);
    expect(await ping(guests[1]!, ips[0]!)).toBe(false);
    await underlay(t, 0, true);
    await waitFor(() => ping(guests[1]!, ips[0]!), 10000, 'gateway back');
  });

  it('a restarted engine adopts the span and re-creates a vanished VXLAN port', async () => {
    engines[1]!.kill9();
    await engines[1]!.exited;
    await hosts[1]!.exec(['ip', 'link', 'del', 'vx10100']);
    expect(await ping(guests[1]!, ips[0]!)).toBe(false);
    const e = EngineDriver.spawn(hosts[1]!);
    engines[1] = e;
    await e.call('create', { runDir: runDirs[1], firewall: 'nftables' });
    await e.call('adopt', [net]);
    const info = await e.call<{ span: { role: string; port: string } }>('info', 'lab');
    expect(info.span.role).toBe('member');
    expect((await hosts[1]!.exec(['ip', '-d', 'link', 'show', 'vx10100'])).stdout).toContain('master vsp0');
    await waitFor(() => ping(guests[1]!, ips[0]!), 10000, 'member 2 back after adoption');
    expect(await ping(guests[1]!, ips[2]!)).toBe(true);
  });

  it('a guest moved from host 1 to host 2 keeps its address and is reachable again', async () => {
    // As in the EVPN test: the NIC moves, the guest keeps its configuration and announces itself.
    const g1 = guests[0]!;
    const t0 = performance.now();
    await engines[0]!.call('detachPort', 'lab', 'vnet0');
    await hosts[0]!.exec(['ip', 'link', 'set', 'vnet0', 'name', 'vmig']);
    await hosts[0]!.exec(['ip', 'link', 'set', 'vmig', 'netns', hosts[1]!.name]);
    await engines[1]!.call('attachPort', 'lab', 'vmig');
    await g1.exec(['busybox', 'arping', '-U', '-c', '1', '-I', 'eth0', ips[0]!], { allowFail: true });
    await waitFor(() => ping(guests[2]!, ips[0]!), 15000, 'moved guest reachable from host 3');
    console.log(
      `span vxlan: migration gap (detach on host 1 → first reply via host 2) ${(performance.now() - t0).toFixed(0)} ms`,
    );
    // Host 3's kernel re-learned the MAC behind host 2.
    expect((await hosts[2]!.exec(['bridge', 'fdb', 'show', 'dev', 'vx10100'])).stdout).toContain(
      `${MACS[0]} dst ${UNDERLAY[1]}`,
    );
    expect((await guestDhcp(g1, 'eth0')).ip).toBe(ips[0]);
    // Back to host 1 for the residue check.
    await engines[1]!.call('detachPort', 'lab', 'vmig');
    await hosts[1]!.exec(['ip', 'link', 'set', 'vmig', 'netns', hosts[0]!.name]);
    await hosts[0]!.exec(['ip', 'link', 'set', 'vmig', 'name', 'vnet0']);
    await hosts[0]!.up('vnet0');
  });

  it('stop leaves every host as it was', async () => {
    for (const g of guests) await g.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
    for (let i = 0; i < 3; i++) {
      await engines[i]!.call('stop', 'lab');
      await settle(hosts[i]!);
      const after = await snapshot(hosts[i]!);
      if (i === 0) {
        // vnet0 went to host 2 and came back: its link-local address was re-made, nothing else may differ.
        const strip = (s: Record<string, string>) =>
          Object.fromEntries(
            Object.entries(s).map(([k, v]) => [
              k,
              v
                .split('\n')
                .filter((l) => !l.includes('vnet0'))
                .join('\n'),
            ]),
          );
        expect(strip(after)).toEqual(strip(before[i]!));
        expect(after.links).toContain('vnet0');
      } else expect(after).toEqual(before[i]);
    }
  });
});
