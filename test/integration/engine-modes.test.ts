/**
 * route, isolated and open networks with real parts, on both firewall backends: the engine runs in
 * the test's "host" namespace; the uplink stands for the world.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ForwardMode, Network } from '../../src/model/network.js';
import { cleanupAllNetns, createNetns, guestDhcp, link } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import {
  EngineDriver,
  peerEcho,
  snapshot,
  type Topology,
  tcpProbe,
  testNetwork,
  topology,
  waitFor,
} from './engine-harness.js';

const skip = missingPrereqs(['ip', 'nft', 'iptables-restore', 'dnsmasq', 'busybox', 'node']);

function modeNetwork(mode: ForwardMode): Network {
  return testNetwork({
    name: `vh5${mode}`,
    forward: { mode, interfaces: [] },
    bridge: { name: 'vbr0', stp: false, delay: 0 },
    ips: [
      {
        family: 'ipv4',
        address: '10.88.0.1',
        prefix: 24,
        dhcp: {
          ranges: [{ start: '10.88.0.100', end: '10.88.0.200' }],
          hosts: [{ mac: '52:54:00:aa:00:01', ip: '10.88.0.10', name: 'g1' }],
        },
      },
    ],
    dns: { forwarders: [], txts: [], srvs: [], hosts: [{ ip: '10.88.0.9', hostnames: ['svc.example'] }] },
  });
}

for (const backend of ['nftables', 'iptables'] as const) {
  for (const mode of ['route', 'none', 'open'] as const) {
    describe.skipIf(skip)(`engine: ${mode === 'none' ? 'isolated' : mode} network (${backend})`, () => {
      let t: Topology;
      let eng: EngineDriver;
      const net = modeNetwork(mode);

      beforeAll(async () => {
        t = await topology(createNetns, link, 1);
        // The world knows the way back to the guests' subnet (route and open networks need it).
        await t.up.addRoute('10.88.0.0/24', { via: '192.0.2.2' });
        eng = EngineDriver.spawn(t.host);
        await eng.call('create', { runDir: t.runDir, firewall: backend });
        await eng.call('start', net);
        await eng.call('attachPort', net.name, 'vnet0');
      });
      afterAll(async () => {
        await eng?.end().catch(() => {});
        cleanupAllNetns();
      });

      it('the guest gets its reservation and resolves names through dnsmasq', async () => {
        const g = t.guests[0]!;
        const l = await guestDhcp(g, 'eth0');
        expect(l.ip).toBe('10.88.0.10');
        const a = await g.exec(['busybox', 'nslookup', '-type=a', 'svc.example', '10.88.0.1']);
        expect(a.stdout).toContain('10.88.0.9');
      });

      if (mode === 'route' || mode === 'open') {
        it('the uplink sees the guest own address (no NAT) and can reach the guest', async () => {
          const srv = peerEcho(t.up, 8080);
          await waitFor(() => srv.output().stdout.includes('listening'));
          expect(await tcpProbe(t.guests[0]!, '192.0.2.1', 8080)).toBe('10.88.0.10');
          srv.kill();
          const gsrv = peerEcho(t.guests[0]!, 9090);
          await waitFor(() => gsrv.output().stdout.includes('listening'));
          expect(await tcpProbe(t.up, '10.88.0.10', 9090)).toBe('192.0.2.1');
          gsrv.kill();
        });
      }
      if (mode === 'route') {
        it('has its rules in place', async () => {
          const s = await snapshot(t.host);
          expect(s[backend === 'nftables' ? 'nft' : 'iptables']).toContain('10.88.0.0/24');
        });
      }
      if (mode === 'open') {
        it('installs no firewall rules at all', async () => {
          const s = await snapshot(t.host);
          for (const k of ['nft', 'iptables', 'ip6tables']) expect(s[k]).toBe(t.before[k]);
        });
      }
      if (mode === 'none') {
        it('nothing leaves: the uplink is unreachable, inbound too', async () => {
          const srv = peerEcho(t.up, 8080);
          await waitFor(() => srv.output().stdout.includes('listening'));
          expect(await tcpProbe(t.guests[0]!, '192.0.2.1', 8080)).toBeUndefined();
          expect(srv.output().stdout).not.toContain('conn');
          srv.kill();
          const gsrv = peerEcho(t.guests[0]!, 9090);
          await waitFor(() => gsrv.output().stdout.includes('listening'));
          expect(await tcpProbe(t.up, '10.88.0.10', 9090)).toBeUndefined();
          gsrv.kill();
          // No forwarding was switched on for an isolated network.
          const s = await snapshot(t.host);
          expect(s.sysctl).toBe(t.before.sysctl);
        });
      }

      it('stops leaving nothing behind', async () => {
        await eng.call('stop', net.name);
        expect(await snapshot(t.host)).toEqual(t.before);
      });
    });
  }
}
