/**
 * firewalld (issue 12, 3), both backends: the real Debian firewalld runs in the test's "host"
 * namespace, sealed in a mount namespace (a copy of /etc/firewalld bound over it, a tmpfs on /run),
 * on the test's private system bus; virtnet's shipped zone (packaging/firewalld/virtnet.xml) is in
 * that copy, as the package installs it. The engine talks to firewalld over the bus (as virtnetd
 * does). Without a zone, firewalld's default zone rejects the guest's DHCP (control); with it the
 * guest gets its lease, resolves, reaches the uplink masqueraded and is reached through a port
 * forward; `firewall-cmd --reload` (Reloaded) and a firewalld restart (NameOwnerChanged) put the
 * bridge back into its zone; `<bridge zone='…'/>` is honoured; a `libvirt` zone is preferred when
 * firewalld has one; stop takes the bridge out of the zone and leaves the namespace as before.
 */
import { copyFileSync, cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import {
  planPortForwards,
  renderPortForwardsIptables,
  renderPortForwardsNftables,
} from '../../src/plan/firewall/portforward.js';
import {
  cleanupAllNetns,
  createNetns,
  guestDhcp,
  link,
  type Netns,
  type SpawnedProcess,
} from '../helpers/netns.js';
import { type PrivateBus, startPrivateBus } from '../helpers/private-bus.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';
import {
  EngineDriver,
  peerEcho,
  runDirFor,
  settle,
  snapshot,
  tcpProbe,
  testNetwork,
  waitFor,
} from './engine-harness.js';

const skip = missingPrereqs([
  'ip',
  'nft',
  'dnsmasq',
  'busybox',
  'node',
  'firewalld',
  'firewall-cmd',
  'busctl',
  'dbus-daemon',
  'unshare',
]);

const MAC = '52:54:00:aa:00:01';
const NET = 'vf12';
const GUEST_IP = '10.87.0.50';
const BR = 'vfbr0';

function network(zone?: string): Network {
  return testNetwork({
    name: NET,
    bridge: { name: BR, stp: false, delay: 0, ...(zone ? { zone } : {}) },
    ips: [
      {
        family: 'ipv4',
        address: '10.87.0.1',
        prefix: 24,
        dhcp: { ranges: [], hosts: [{ mac: MAC, ip: GUEST_IP, name: 'resv1' }] },
      },
    ],
  });
}

const forwardInput = {
  network: NET,
  bridge: BR,
  domain: 'web1',
  subnets: ['10.87.0.0/24'],
  forwards: [
    { proto: 'tcp' as const, hostPort: 8080, guestIp: GUEST_IP, guestPort: 9090, family: 'ipv4' as const },
  ],
};

for (const backend of ['nftables', 'iptables'] as const) {
  describe.skipIf(skip)(`firewalld zones (${backend} backend)`, () => {
    let host: Netns;
    let up: Netns;
    let g: Netns;
    let bus: PrivateBus;
    let eng: EngineDriver;
    let runDir: string;
    let fw: SpawnedProcess | undefined;
    let etc: string;
    let before: Record<string, string>;

    const busctl = (args: string[]) => host.exec(['busctl', `--address=${bus.address}`, ...args]);
    const zoneOf = async (ifname: string) =>
      (
        await busctl([
          'call',
          'org.fedoraproject.FirewallD1',
          '/org/fedoraproject/FirewallD1',
          'org.fedoraproject.FirewallD1.zone',
          'getZoneOfInterface',
          's',
          ifname,
        ])
      ).stdout
        .trim()
        .replace(/^s "(.*)"$/, '$1');
    const firewalldUp = async () =>
      (
        await busctl([
          'call',
          'org.freedesktop.DBus',
          '/org/freedesktop/DBus',
          'org.freedesktop.DBus',
          'NameHasOwner',
          's',
          'org.fedoraproject.FirewallD1',
        ])
      ).stdout.trim() === 'b true';
    const startFirewalld = async () => {
      fw = host.spawn(
        [
          'unshare',
          '-m',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount --bind "$0" /etc/firewalld && mount -t tmpfs tmpfs /run && exec firewalld --nofork --nopid --log-target console',
          etc,
        ],
        { env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address } },
      );
      await waitFor(firewalldUp, 20_000, 'firewalld on the bus');
      await waitFor(
        async () => (await host.exec(['nft', 'list', 'tables'])).stdout.includes('inet firewalld'),
        10_000,
        "firewalld's table",
      );
    };
    const stopFirewalld = async () => {
      const p = fw;
      fw = undefined;
      p?.kill('SIGTERM');
      await waitFor(async () => !(await firewalldUp()), 10_000, 'firewalld gone');
    };
    const firewallCmd = (args: string[]) =>
      host.exec(['firewall-cmd', ...args], { env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address } });

    const forward = () => {
      const rs = planPortForwards(forwardInput);
      if (backend === 'nftables') {
        const s = renderPortForwardsNftables(rs);
        return {
          add: () => host.exec(['nft', '-f', '-'], { input: s.apply }),
          del: () => host.exec(['nft', '-f', '-'], { input: s.remove }),
        };
      }
      const s = renderPortForwardsIptables(rs).v4;
      return {
        add: () => host.exec(['iptables-restore', '--noflush', '-w'], { input: s.apply }),
        del: () => host.exec(['iptables-restore', '--noflush', '-w'], { input: s.remove }),
      };
    };
    const reachable = async () => {
      const out: Record<string, string> = {};
      await g.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
      out.lease = await guestDhcp(g, 'eth0', { tries: 3 }).then(
        (l) => l.ip,
        () => 'no lease',
      );
      if (out.lease !== GUEST_IP) {
        await g.exec(['ip', 'addr', 'add', `${GUEST_IP}/24`, 'dev', 'eth0'], { allowFail: true });
        await g.exec(['ip', 'route', 'replace', 'default', 'via', '10.87.0.1'], { allowFail: true });
      }
      const dns = await g.exec(['busybox', 'nslookup', '-type=a', 'resv1', '10.87.0.1'], {
        allowFail: true,
        timeoutMs: 8000,
      });
      out.dns = dns.stdout.includes(GUEST_IP) ? 'ok' : 'failed';
      out.natOut = (await tcpProbe(g, '192.0.2.1', 8081)) ?? 'failed';
      out.portForward = (await tcpProbe(up, '192.0.2.2', 8080)) ?? 'failed';
      return out;
    };
    /**
     * What virtnetd does on the engine's `repaired` event (src/daemon/main.ts): the hooks re-apply
     * the domains' port forwards. firewalld flushes iptables' tables when it starts and reloads, so
     * with the iptables backend the network's rules (repaired by the engine) and this forward go.
     */
    const reapplyForwardsIfRepaired = async () => {
      const evs = await eng.call<{ kind: string }[]>('events');
      if (!evs.some((e) => e.kind === 'repaired')) return false;
      await forward()
        .del()
        .catch(() => {});
      await forward().add();
      return true;
    };
    const ALL_OK = { lease: GUEST_IP, dns: 'ok', natOut: '192.0.2.2', portForward: '192.0.2.1' };
    const start = async (driver: EngineDriver, zone?: string) => {
      await driver.call('start', network(zone));
      await driver.call('attachPort', NET, 'vnet0');
      await forward().add();
    };
    const stop = async (driver: EngineDriver) => {
      await forward().del();
      await driver.call('stop', NET);
    };
    const ensureStopped = async (driver: EngineDriver) => {
      if ((await driver.call('info', NET)) === null) return;
      await forward()
        .del()
        .catch(() => {});
      await driver.call('stop', NET).catch(() => {});
    };
    /**
     * The namespace's state, firewalld's own table left out of the nft view: firewalld builds a zone's
     * chains the first time an interface uses it and keeps them (empty of that interface) until its
     * next reload — its state, not a binding. What must hold of it is checked apart: `bridgeInFirewalld`
     * says whether firewalld's table still names the bridge.
     */
    const snap = async () => {
      const s = await snapshot(host);
      delete s.procs;
      const tables = s.nft!.split(/^(?=table )/m);
      s.nft = tables.filter((t) => !t.startsWith('table inet firewalld')).join('');
      s.bridgeInFirewalld = String(
        tables.some((t) => t.startsWith('table inet firewalld') && t.includes(`"${BR}"`)),
      );
      return s;
    };

    beforeAll(async () => {
      bus = await startPrivateBus({ tempPrefix: 'vf12-bus-' });
      host = await createNetns('vf12-h');
      up = await createNetns('vf12-u');
      g = await createNetns('vf12-g');
      await link(host, 'wan0', up, 'up0');
      await host.addAddr('wan0', '192.0.2.2/24');
      await up.addAddr('up0', '192.0.2.1/24');
      await host.addRoute('default', { via: '192.0.2.1' });
      await link(host, 'vnet0', g, 'eth0', { macB: MAC });
      await settle(host);
      // firewalld's configuration: a copy of the system's, with virtnet's zone as the package ships it.
      etc = join(mkdtempSync(join(tmpdir(), 'vf12-fwd-')), 'etc-firewalld');
      cpSync('/etc/firewalld', etc, { recursive: true });
      copyFileSync(join(projectRoot, 'packaging/firewalld/virtnet.xml'), join(etc, 'zones', 'virtnet.xml'));
      await startFirewalld();
      runDir = await runDirFor(host);
      eng = EngineDriver.spawn(host);
      await eng.call('create', { runDir, firewall: backend, coexist: true, firewalldBus: bus.address });
      const a = peerEcho(up, 8081);
      const b = peerEcho(g, 9090);
      await waitFor(
        () => a.output().stdout.includes('listening') && b.output().stdout.includes('listening'),
        5000,
        'echo servers',
      );
      before = await snap();
    });
    afterAll(async () => {
      await eng?.end().catch(() => {});
      fw?.kill('SIGTERM');
      cleanupAllNetns();
      await bus?.stop();
    });

    it("control: without a zone firewalld's default zone rejects the guest's DHCP and DNS", async () => {
      const bare = EngineDriver.spawn(host);
      try {
        await bare.call('create', { runDir, firewall: backend, coexist: true });
        await start(bare);
        expect(await zoneOf(BR)).toBe('');
        const got = await reachable();
        expect(got.lease).toBe('no lease');
        expect(got.dns).toBe('failed');
        await stop(bare);
      } finally {
        await ensureStopped(bare);
        await bare.end();
      }
    });

    it('start puts the bridge into virtnet’s zone: lease, DNS, NAT out and a port forward work', async () => {
      try {
        await start(eng);
        expect(await zoneOf(BR)).toBe('virtnet');
        expect(await reachable()).toEqual(ALL_OK);
      } catch (e) {
        await ensureStopped(eng);
        throw e;
      }
    });

    it('firewall-cmd --reload (Reloaded): the zone is set again, traffic still flows', async () => {
      const r = await firewallCmd(['--reload']);
      expect(r.stdout.trim()).toBe('success');
      await waitFor(async () => (await zoneOf(BR)) === 'virtnet', 5000, 'zone after reload');
      await new Promise((r) => setTimeout(r, 300));
      const repaired = await reapplyForwardsIfRepaired();
      expect(repaired).toBe(backend === 'iptables');
      expect(await reachable()).toEqual(ALL_OK);
    });

    it('firewalld restarted (NameOwnerChanged): the zone is set again', async () => {
      await stopFirewalld();
      await startFirewalld();
      await waitFor(async () => (await zoneOf(BR)) === 'virtnet', 5000, 'zone after restart');
      await new Promise((r) => setTimeout(r, 300));
      await reapplyForwardsIfRepaired();
      expect(await reachable()).toEqual(ALL_OK);
    });

    it('stop takes the bridge out of the zone and leaves the namespace as before start', async () => {
      await stop(eng);
      expect(await zoneOf(BR)).toBe('');
      expect(await snap()).toEqual(before);
    });

    it("<bridge zone='trusted'/> is honoured; a zone firewalld lacks is refused naming the field", async () => {
      try {
        await start(eng, 'trusted');
        expect(await zoneOf(BR)).toBe('trusted');
        expect((await reachable()).lease).toBe(GUEST_IP);
        await stop(eng);
      } finally {
        await ensureStopped(eng);
      }
      expect(await zoneOf(BR)).toBe('');
      const r = await eng.raw('start', network('nosuchzone'));
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/network\/bridge@zone 'nosuchzone': firewalld has no such zone/);
      expect(await snap()).toEqual(before);
    });

    it("a 'libvirt' zone, when firewalld has one, is preferred", async () => {
      copyFileSync(join(projectRoot, 'packaging/firewalld/virtnet.xml'), join(etc, 'zones', 'libvirt.xml'));
      expect((await firewallCmd(['--reload'])).stdout.trim()).toBe('success');
      try {
        await start(eng);
        expect(await zoneOf(BR)).toBe('libvirt');
        expect(await reachable()).toEqual(ALL_OK);
        await stop(eng);
      } finally {
        await ensureStopped(eng);
      }
      expect(await zoneOf(BR)).toBe('');
    });
  });
}
