/**
 * Live changes with real parts (nftables): a running network reconciled with new definitions — only
 * what changed is touched (SIGHUP for host files, dnsmasq restart for its config, addresses/routes
 * added and removed, rules swapped in one transaction), the guest's port stays attached. The network
 * runs with STP on (libvirt's default): the port forwards after the kernel's minimum delay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import { cleanupAllNetns, createNetns, guestDhcp, link } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { EngineDriver, snapshot, type Topology, testNetwork, topology } from './engine-harness.js';

const skip = missingPrereqs(['ip', 'nft', 'dnsmasq', 'busybox', 'node']);

const base = testNetwork({
  name: 'vh5upd',
  bridge: { name: 'vbr0', stp: true, delay: 0 },
  ips: [
    {
      family: 'ipv4',
      address: '10.44.0.1',
      prefix: 24,
      dhcp: { ranges: [{ start: '10.44.0.100', end: '10.44.0.200' }], hosts: [] },
    },
  ],
  dns: { forwarders: [], txts: [], srvs: [], hosts: [] },
});

function variant(f: (n: Network) => void): Network {
  const n = structuredClone(base);
  f(n);
  return n;
}

describe.skipIf(skip)('engine: live update of a running network (nftables)', () => {
  let t: Topology;
  let eng: EngineDriver;
  let pid: number;
  beforeAll(async () => {
    t = await topology(createNetns, link, 1);
    eng = EngineDriver.spawn(t.host);
    await eng.call('create', { runDir: t.runDir, firewall: 'nftables' });
    pid = (await eng.call<{ dnsmasqPid: number }>('start', base)).dnsmasqPid;
    await eng.call('attachPort', base.name, 'vnet0');
  });
  afterAll(async () => {
    await eng?.end().catch(() => {});
    cleanupAllNetns();
  });

  const info = () => eng.call<{ dnsmasqPid: number; ports: string[] }>('info', base.name);
  const rules = async () => (await snapshot(t.host)).nft;

  it('STP on: the kernel keeps its 2 s minimum delay; the port forwards, then DHCP works', async () => {
    expect((await t.host.exec(['cat', '/sys/class/net/vbr0/bridge/stp_state'])).stdout.trim()).toBe('1');
    expect((await t.host.exec(['cat', '/sys/class/net/vbr0/bridge/forward_delay'])).stdout.trim()).toBe(
      '200',
    );
    await t.host.waitPortForwarding('vnet0', 15_000);
    expect((await guestDhcp(t.guests[0]!, 'eth0')).ip).toMatch(/^10\.44\.0\.\d+$/);
  });

  it('records the bridge identity', async () => {
    ifindex = (await t.host.exec(['cat', '/sys/class/net/vbr0/ifindex'])).stdout.trim();
    expect(ifindex).toMatch(/^\d+$/);
  });

  it('a new <dns><host>: host files rewritten + SIGHUP (same dnsmasq), rules untouched', async () => {
    const before = await rules();
    await eng.call(
      'update',
      variant((n) => n.dns!.hosts.push({ ip: '10.44.0.9', hostnames: ['new.example'] })),
    );
    expect((await info()).dnsmasqPid).toBe(pid);
    expect(await rules()).toBe(before);
    const r = await t.guests[0]!.exec(['busybox', 'nslookup', '-type=a', 'new.example', '10.44.0.1']);
    expect(r.stdout).toContain('10.44.0.9');
  });

  it('a changed DHCP range: dnsmasq restarted with the new config', async () => {
    await eng.call(
      'update',
      variant((n) => {
        n.dns!.hosts.push({ ip: '10.44.0.9', hostnames: ['new.example'] });
        n.ips[0]!.dhcp!.ranges = [{ start: '10.44.0.150', end: '10.44.0.160' }];
      }),
    );
    const now = (await info()).dnsmasqPid;
    expect(now).not.toBe(pid);
    pid = now;
    await t.guests[0]!.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
    const l = await guestDhcp(t.guests[0]!, 'eth0', { tries: 8 });
    const last = Number(l.ip.split('.')[3]);
    expect(last).toBeGreaterThanOrEqual(150);
    expect(last).toBeLessThanOrEqual(160);
  });

  let ifindex = '';
  it('a route added and the mode switched to route: routes and rules follow live, bridge and port kept', async () => {
    await eng.call(
      'update',
      variant((n) => {
        n.dns!.hosts.push({ ip: '10.44.0.9', hostnames: ['new.example'] });
        n.ips[0]!.dhcp!.ranges = [{ start: '10.44.0.150', end: '10.44.0.160' }];
        n.routes.push({ family: 'ipv4', address: '10.45.0.0', prefix: 16, gateway: '10.44.0.2' });
        n.forward = { mode: 'route', interfaces: [] };
      }),
    );
    expect((await t.host.exec(['ip', 'route', 'show', '10.45.0.0/16'])).stdout).toContain(
      'via 10.44.0.2 dev vbr0',
    );
    const r = await rules();
    expect(r).not.toContain('masquerade');
    expect(r).toContain('10.44.0.0/24');
    expect((await info()).ports).toEqual(['vnet0']);
    // The same bridge (not re-created), the port still in it.
    expect((await t.host.exec(['cat', '/sys/class/net/vnet0/master/ifindex'])).stdout.trim()).toBe(ifindex);
    expect((await t.host.exec(['cat', '/sys/class/net/vnet0/brport/state'])).stdout.trim()).toBe('3');
  });

  it('stops leaving nothing behind', async () => {
    await eng.call('stop', base.name);
    expect(await snapshot(t.host)).toEqual(t.before);
  });
});
