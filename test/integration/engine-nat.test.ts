/**
 * The engine with real parts, NAT mode, both firewall backends: the engine runs inside the test's
 * "host" namespace; guests are namespaces whose veth peer (vnetN) is a port of the bridge; "uplink"
 * stands for the world. Nothing touches the root namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { EngineDriver, runDirFor, settle, snapshot, testNetwork, waitFor } from './engine-harness.js';

const skip = missingPrereqs(['ip', 'nft', 'iptables-restore', 'dnsmasq', 'busybox', 'node']);

const MAC1 = '52:54:00:aa:00:01';
const MAC2 = '52:54:00:aa:00:02';

function natNetwork(): Network {
  return testNetwork({
    name: 'vh5nat',
    bridge: { name: 'vbr0', stp: false, delay: 0 },
    ips: [
      {
        family: 'ipv4',
        address: '10.77.0.1',
        prefix: 24,
        dhcp: {
          ranges: [{ start: '10.77.0.100', end: '10.77.0.200' }],
          hosts: [{ mac: MAC1, ip: '10.77.0.50', name: 'resv1' }],
        },
      },
    ],
    dns: {
      forwarders: [],
      txts: [],
      srvs: [],
      hosts: [{ ip: '10.77.0.9', hostnames: ['svc.example'] }],
    },
  });
}

/** A node TCP server in `ns` that answers each connection with the peer address it sees. */
function peerEcho(ns: Netns, port: number) {
  return ns.spawn([
    'node',
    '-e',
    `require('net').createServer(s=>{console.log('conn '+s.remoteAddress);s.end(s.remoteAddress+'\\n')}).listen(${port},()=>console.log('listening'))`,
  ]);
}

for (const backend of ['nftables', 'iptables'] as const) {
  describe.skipIf(skip)(`engine: nat network (${backend})`, () => {
    let host: Netns;
    let up: Netns;
    let g1: Netns;
    let g2: Netns;
    let eng: EngineDriver;
    let before: Record<string, string>;
    const net = natNetwork();
    const seen: { kind: string; event?: string; mac?: string }[] = [];

    beforeAll(async () => {
      host = await createNetns('vh5-h');
      up = await createNetns('vh5-u');
      g1 = await createNetns('vh5-g');
      g2 = await createNetns('vh5-g');
      await link(host, 'wan0', up, 'up0');
      await host.addAddr('wan0', '192.0.2.2/24');
      await up.addAddr('up0', '192.0.2.1/24');
      await host.addRoute('default', { via: '192.0.2.1' });
      await link(host, 'vnet0', g1, 'eth0', { macB: MAC1 });
      await link(host, 'vnet1', g2, 'eth0', { macB: MAC2 });
      await settle(host);
      before = await snapshot(host);
      eng = EngineDriver.spawn(host);
      const runDir = await runDirFor(host);
      const created = await eng.call<{ backend: string }>('create', { runDir, firewall: backend });
      expect(created.backend).toBe(backend);
    });
    afterAll(async () => {
      await eng?.end().catch(() => {});
      cleanupAllNetns();
    });

    it('starts: bridge with pinned MAC and address, rules in, dnsmasq serving', async () => {
      const info = await eng.call<{ bridge: string; firewall: string; dnsmasqPid: number }>('start', net);
      expect(info.bridge).toBe('vbr0');
      expect(info.firewall).toBe(backend);
      expect(info.dnsmasqPid).toBeGreaterThan(0);
      expect(await host.mac('vbr0')).toBe('52:54:00:5a:00:01');
      expect((await host.exec(['cat', '/sys/class/net/vbr0/addr_assign_type'])).stdout.trim()).toBe('3');
      expect((await host.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'vbr0'])).stdout).toContain(
        '10.77.0.1/24',
      );
      expect((await host.exec(['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('1');
      const rules =
        backend === 'nftables'
          ? (await host.exec(['nft', 'list', 'ruleset'])).stdout
          : (await host.exec(['iptables-save'])).stdout;
      expect(rules).toMatch(/masquerade|MASQUERADE/);
      await eng.call('attachPort', 'vh5nat', 'vnet0');
      await eng.call('attachPort', 'vh5nat', 'vnet1');
      expect((await host.exec(['cat', '/sys/class/net/vnet0/master/ifindex'])).exitCode).toBe(0);
    });

    it('guest 1 gets its reservation, guest 2 a dynamic address', async () => {
      const l1 = await guestDhcp(g1, 'eth0');
      expect(l1.ip).toBe('10.77.0.50');
      expect(l1.router).toBe('10.77.0.1');
      expect(l1.dns).toContain('10.77.0.1');
      const l2 = await guestDhcp(g2, 'eth0', { hostname: 'dyn2', tries: 8 });
      const last = Number(l2.ip.split('.')[3]);
      expect(l2.ip.startsWith('10.77.0.')).toBe(true);
      expect(last).toBeGreaterThanOrEqual(100);
      expect(last).toBeLessThanOrEqual(200);
      const leases = await eng.call<{ mac: string; ip: string }[]>('leases', 'vh5nat');
      expect(leases.map((l) => `${l.mac} ${l.ip}`).sort()).toEqual([
        `${MAC1} 10.77.0.50`,
        `${MAC2} ${l2.ip}`,
      ]);
      // The lease file watcher reported both as lease-changed events.
      await waitFor(
        async () => {
          const evs = await eng.call<{ kind: string; event?: string; mac?: string }[]>('events');
          seen.push(...evs);
          return [MAC1, MAC2].every((m) =>
            seen.some((e) => e.kind === 'lease-changed' && e.event === 'added' && e.mac === m),
          );
        },
        5000,
        'lease-changed events',
      );
    });

    it('resolves a <dns><host> name and a reservation name through dnsmasq', async () => {
      const a = await g1.exec(['busybox', 'nslookup', '-type=a', 'svc.example', '10.77.0.1']);
      expect(a.stdout).toContain('10.77.0.9');
      const b = await g1.exec(['busybox', 'nslookup', '-type=a', 'resv1', '10.77.0.1']);
      expect(b.stdout).toContain('10.77.0.50');
    });

    it('reaches the uplink, which sees the host uplink address as source', async () => {
      const srv = peerEcho(up, 8080);
      await waitFor(() => srv.output().stdout.includes('listening'), 5000, 'uplink server');
      const r = await g1.exec(['busybox', 'nc', '-w', '3', '192.0.2.1', '8080'], { input: '' });
      expect(r.stdout.trim()).toMatch(/^(::ffff:)?192\.0\.2\.2$/);
      srv.kill();
    });

    it('refuses an inbound connection from the uplink', async () => {
      const srv = peerEcho(g1, 9090);
      await waitFor(() => srv.output().stdout.includes('listening'), 5000, 'guest server');
      await up.addRoute('10.77.0.0/24', { via: '192.0.2.2' });
      const r = await up.exec(['busybox', 'nc', '-w', '2', '10.77.0.50', '9090'], {
        input: '',
        allowFail: true,
      });
      expect(r.exitCode).not.toBe(0);
      expect(srv.output().stdout).not.toContain('conn');
      srv.kill();
      await up.exec(['ip', 'route', 'del', '10.77.0.0/24']);
    });

    it('adds a reservation live: the next lease of a new guest gets it, no firewall churn', async () => {
      const rulesBefore = (await snapshot(host)).nft;
      const t0 = Date.now();
      await eng.call('addHost', 'vh5nat', { mac: MAC2, ip: '10.77.0.60', hostname: 'late' });
      const ms = Date.now() - t0;
      expect(ms).toBeLessThan(1000);
      // Release the dynamic lease's address in the guest and ask again.
      await g2.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
      const l = await guestDhcp(g2, 'eth0', { tries: 8 });
      expect(l.ip).toBe('10.77.0.60');
      expect((await snapshot(host)).nft).toBe(rulesBefore);
      const b = await g1.exec(['busybox', 'nslookup', '-type=a', 'late', '10.77.0.1']);
      expect(b.stdout).toContain('10.77.0.60');
    });

    it('refuses a second network whose subnet overlaps, and a bridge name in use, touching nothing', async () => {
      const snap = await snapshot(host);
      const overlapping = testNetwork({
        name: 'vh5over',
        bridge: { name: 'vbr1', stp: false, delay: 0 },
        mac: '52:54:00:5a:00:02',
        ips: [{ family: 'ipv4', address: '10.77.0.129', prefix: 25 }],
      });
      const r1 = await eng.raw('start', overlapping);
      expect(r1.ok).toBe(false);
      expect(r1.errorName).toBe('ConflictError');
      expect(r1.error).toMatch(/overlaps/);
      const sameBridge = {
        ...overlapping,
        bridge: { name: 'wan0' },
        ips: [{ family: 'ipv4', address: '10.78.0.1', prefix: 24 }],
      };
      const r2 = await eng.raw('start', sameBridge);
      expect(r2.ok).toBe(false);
      expect(r2.error).toMatch(/wan0 already exists/);
      const routeClash = { ...overlapping, ips: [{ family: 'ipv4', address: '192.0.2.128', prefix: 25 }] };
      const r3 = await eng.raw('start', routeClash);
      expect(r3.error).toMatch(/overlaps the route to 192\.0\.2\.0\/24 on wan0/);
      const noDev = { ...overlapping, forward: { mode: 'nat', dev: 'nosuch0', interfaces: [] }, ips: [] };
      const r4 = await eng.raw('start', noDev);
      expect(r4.error).toMatch(/forward dev nosuch0 does not exist/);
      expect(await snapshot(host)).toEqual(snap);
    });

    it('stops leaving nothing behind (links, addresses, routes, rules, sysctls, processes)', async () => {
      await eng.call('stop', 'vh5nat');
      const after = await snapshot(host);
      expect(after).toEqual(before);
    });
  });
}
