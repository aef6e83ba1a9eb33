/**
 * Crash and adoption with real parts, both backends: the engine process is killed with SIGKILL while
 * a guest holds a lease; a new engine process adopts the network without disturbing the guest and
 * without duplicating a rule; a later one repairs drift (a rule deleted, dnsmasq killed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAllNetns, createNetns, guestDhcp, link } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import {
  EngineDriver,
  guestMac,
  peerEcho,
  snapshot,
  type Topology,
  tcpProbe,
  testNetwork,
  topology,
  waitFor,
} from './engine-harness.js';

const skip = missingPrereqs(['ip', 'nft', 'iptables-restore', 'dnsmasq', 'busybox', 'node']);

const net = testNetwork({
  name: 'vh5crash',
  bridge: { name: 'vbr0', stp: false, delay: 0 },
  ips: [
    {
      family: 'ipv4',
      address: '10.66.0.1',
      prefix: 24,
      dhcp: { ranges: [{ start: '10.66.0.100', end: '10.66.0.200' }], hosts: [] },
    },
  ],
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

for (const backend of ['nftables', 'iptables'] as const) {
  describe.skipIf(skip)(`engine: crash and adoption (${backend})`, () => {
    let t: Topology;
    let eng: EngineDriver;
    let up: Record<string, string>;
    let leaseIp: string;
    let pid1: number;

    beforeAll(async () => {
      t = await topology(createNetns, link, 1);
      eng = EngineDriver.spawn(t.host);
      await eng.call('create', { runDir: t.runDir, firewall: backend });
      const info = await eng.call<{ dnsmasqPid: number }>('start', net);
      pid1 = info.dnsmasqPid;
      await eng.call('attachPort', net.name, 'vnet0');
      leaseIp = (await guestDhcp(t.guests[0]!, 'eth0', { tries: 8 })).ip;
      up = await snapshot(t.host);
    });
    afterAll(async () => {
      await eng?.end().catch(() => {});
      cleanupAllNetns();
    });

    it('kill -9 of the engine leaves the network serving', async () => {
      eng.kill9();
      expect(await eng.exited).toBe('SIGKILL');
      expect(alive(pid1)).toBe(true);
      const srv = peerEcho(t.up, 8080);
      await waitFor(() => srv.output().stdout.includes('listening'));
      expect(await tcpProbe(t.guests[0]!, '192.0.2.1', 8080)).toBe('192.0.2.2');
      srv.kill();
    });

    it('a new engine adopts: same dnsmasq, no rule duplicated, the guest keeps its lease', async () => {
      eng = EngineDriver.spawn(t.host);
      await eng.call('create', { runDir: t.runDir, firewall: backend });
      await eng.call('adopt', []);
      const info = await eng.call<{ dnsmasqPid: number; ports: string[] }>('info', net.name);
      expect(info.dnsmasqPid).toBe(pid1);
      expect(info.ports).toEqual(['vnet0']);
      expect(await snapshot(t.host)).toEqual(up);
      const renewed = await guestDhcp(t.guests[0]!, 'eth0', { requestIp: leaseIp });
      expect(renewed.ip).toBe(leaseIp);
      const leases = await eng.call<{ mac: string; ip: string }[]>('leases', net.name);
      expect(leases.map((l) => `${l.mac} ${l.ip}`)).toEqual([`${guestMac(0)} ${leaseIp}`]);
    });

    it('the next engine repairs drift: a deleted rule comes back, a dead dnsmasq is restarted', async () => {
      eng.kill9();
      await eng.exited;
      if (backend === 'nftables') {
        const tables = (await t.host.exec(['nft', 'list', 'tables'])).stdout;
        const table = /table ip (virtnet_\S+)/.exec(tables)?.[1];
        expect(table).toBeDefined();
        await t.host.exec(['nft', 'flush', 'chain', 'ip', table!, 'guest_output']);
      } else {
        const save = (await t.host.exec(['iptables-save', '-t', 'filter'])).stdout;
        const jump = /^-A FORWARD -j (\S+)$/m.exec(save)?.[1];
        expect(jump).toBeDefined();
        await t.host.exec(['iptables', '-w', '-D', 'FORWARD', '-j', jump!]);
      }
      expect(await snapshot(t.host)).not.toEqual(up);
      process.kill(pid1, 'SIGKILL');
      await waitFor(() => !alive(pid1));
      eng = EngineDriver.spawn(t.host);
      await eng.call('create', { runDir: t.runDir, firewall: backend });
      await eng.call('adopt', []);
      const info = await eng.call<{ dnsmasqPid: number }>('info', net.name);
      expect(info.dnsmasqPid).not.toBe(pid1);
      expect(alive(info.dnsmasqPid)).toBe(true);
      // dnsmasq's pid differs; everything else is as it was.
      const now = await snapshot(t.host);
      expect(now).toEqual(up);
      const renewed = await guestDhcp(t.guests[0]!, 'eth0', { requestIp: leaseIp });
      expect(renewed.ip).toBe(leaseIp);
    });

    it('stops leaving nothing behind', async () => {
      await eng.call('stop', net.name);
      expect(await snapshot(t.host)).toEqual(t.before);
    });
  });
}
