/**
 * Bridge mode with real parts: the guest's port is on a host bridge and gets DHCP from the LAN's own
 * dnsmasq (virtnet runs none and installs no rules). With the virtnet extension `enslave`, the engine
 * creates the bridge, moves the NIC's address and default route onto it, and puts them back on stop.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { EngineDriver, guestMac, runDirFor, settle, snapshot, testNetwork } from './engine-harness.js';

const skip = missingPrereqs(['ip', 'nft', 'dnsmasq', 'busybox', 'node']);

interface Lan {
  host: Netns;
  lan: Netns;
  guest: Netns;
}

/** host eth0 (192.168.50.2/24, default via .1) ⇄ lan0 in "lan", which runs the LAN's dnsmasq. */
async function lanTopology(): Promise<Lan> {
  const host = await createNetns('vh5-h');
  const lan = await createNetns('vh5-l');
  const guest = await createNetns('vh5-g');
  await link(host, 'eth0', lan, 'lan0');
  await host.addAddr('eth0', '192.168.50.2/24');
  await host.addRoute('default', { via: '192.168.50.1' });
  await lan.addAddr('lan0', '192.168.50.1/24');
  await link(host, 'vnet0', guest, 'eth0', { macB: guestMac(0) });
  lan.spawn([
    'dnsmasq',
    '--keep-in-foreground',
    '--no-resolv',
    '--no-hosts',
    '--port=0',
    '--user=root',
    '--interface=lan0',
    '--bind-interfaces',
    '--dhcp-range=192.168.50.100,192.168.50.150,1h',
    '--dhcp-host=52:54:00:aa:00:01,192.168.50.77',
    `--dhcp-leasefile=${lan.dir}/leases`,
    `--pid-file=${lan.dir}/pid`,
  ]);
  await settle(host);
  return { host, lan, guest };
}

describe.skipIf(skip)('engine: bridge mode on an existing host bridge', () => {
  let t: Lan;
  let eng: EngineDriver;
  let before: Record<string, string>;
  let net: Network;
  beforeAll(async () => {
    t = await lanTopology();
    // The host's own bridge, with eth0 in it (made by the admin, not by virtnet).
    await t.host.ipBatch([
      'link add br0 type bridge stp_state 0 forward_delay 0',
      'link set eth0 master br0',
      'addr del 192.168.50.2/24 dev eth0',
      'addr add 192.168.50.2/24 dev br0',
      'link set br0 up',
      'route add default via 192.168.50.1 dev br0',
    ]);
    await settle(t.host);
    before = await snapshot(t.host);
    eng = EngineDriver.spawn(t.host);
    await eng.call('create', { runDir: await runDirFor(t.host) });
    net = testNetwork({
      name: 'vh5br',
      forward: { mode: 'bridge', interfaces: [] },
      bridge: { name: 'br0' },
    });
    delete net.mac;
  });
  afterAll(async () => {
    await eng?.end().catch(() => {});
    cleanupAllNetns();
  });

  it('starts without dnsmasq or rules; the guest gets DHCP from the LAN', async () => {
    const info = await eng.call<{ firewall: string; dnsmasqPid?: number }>('start', net);
    expect(info.firewall).toBe('none');
    expect(info.dnsmasqPid).toBeUndefined();
    expect(await snapshot(t.host)).toEqual(before);
    await eng.call('attachPort', net.name, 'vnet0');
    const l = await guestDhcp(t.guest, 'eth0');
    expect(l.ip).toBe('192.168.50.77');
    expect(l.serverId).toBe('192.168.50.1');
  });

  it('stop detaches the port and leaves the host bridge alone', async () => {
    await eng.call('stop', net.name);
    const after = await snapshot(t.host);
    expect(after.addrs).toContain('br0');
    expect(
      (await t.host.exec(['cat', '/sys/class/net/vnet0/master/ifindex'], { allowFail: true })).exitCode,
    ).not.toBe(0);
    expect(after).toEqual(before);
  });
});

describe.skipIf(skip)('engine: bridge mode, virtnet creates the bridge and enslaves the NIC', () => {
  let t: Lan;
  let eng: EngineDriver;
  let before: Record<string, string>;
  let net: Network;
  beforeAll(async () => {
    t = await lanTopology();
    before = await snapshot(t.host);
    eng = EngineDriver.spawn(t.host);
    await eng.call('create', { runDir: await runDirFor(t.host) });
    net = testNetwork({
      name: 'vh5ens',
      forward: { mode: 'bridge', interfaces: [] },
      bridge: { name: 'br0', enslave: 'eth0' },
    });
    delete net.mac;
  });
  afterAll(async () => {
    await eng?.end().catch(() => {});
    cleanupAllNetns();
  });

  it('moves the address and the default route onto the bridge in one step', async () => {
    const ethMac = await t.host.mac('eth0');
    await eng.call('start', net);
    const addrs = (await t.host.exec(['ip', '-o', '-4', 'addr', 'show'])).stdout;
    expect(addrs).toMatch(/br0\s+inet 192\.168\.50\.2\/24/);
    expect(addrs).not.toMatch(/eth0\s+inet/);
    expect((await t.host.exec(['ip', 'route', 'show', 'default'])).stdout).toContain(
      'via 192.168.50.1 dev br0',
    );
    expect(await t.host.mac('br0')).toBe(ethMac);
    // The host keeps its connectivity through the bridge.
    await t.host.exec(['busybox', 'ping', '-c', '1', '-W', '2', '192.168.50.1']);
  });

  it('the guest on the bridge gets DHCP from the LAN dnsmasq', async () => {
    await eng.call('attachPort', net.name, 'vnet0');
    const l = await guestDhcp(t.guest, 'eth0');
    expect(l.ip).toBe('192.168.50.77');
  });

  it('stop puts the address and default route back on the NIC, bridge gone', async () => {
    await eng.call('stop', net.name);
    expect(await snapshot(t.host)).toEqual(before);
    await t.host.exec(['busybox', 'ping', '-c', '1', '-W', '2', '192.168.50.1']);
  });

  it('refuses to enslave a NIC that does not exist, touching nothing', async () => {
    const r = await eng.raw('start', { ...net, bridge: { name: 'br0', enslave: 'nosuch0' } });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/nosuch0 to enslave does not exist/);
    expect(await snapshot(t.host)).toEqual(before);
  });
});
