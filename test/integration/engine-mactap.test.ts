/**
 * The optional `<bridge>-nic` tap (libvirt before 5.x pinned the bridge MAC with it): created with the
 * network's MAC, enslaved, and removed with the network.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAllNetns, createNetns, link } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { EngineDriver, snapshot, type Topology, testNetwork, topology } from './engine-harness.js';

const skip = missingPrereqs(['ip', 'nft', 'dnsmasq', 'node']);

describe.skipIf(skip)('engine: MAC-pinning tap (macTap option)', () => {
  let t: Topology;
  let eng: EngineDriver;
  const net = testNetwork({
    name: 'vh5tap',
    forward: { mode: 'none', interfaces: [] },
    bridge: { name: 'vbr0', stp: false, delay: 0 },
    ips: [{ family: 'ipv4', address: '10.33.0.1', prefix: 24 }],
  });
  beforeAll(async () => {
    t = await topology(createNetns, link, 0);
    eng = EngineDriver.spawn(t.host);
    await eng.call('create', { runDir: t.runDir, macTap: true });
  });
  afterAll(async () => {
    await eng?.end().catch(() => {});
    cleanupAllNetns();
  });

  it('creates vbr0-nic with the network MAC as a port of the bridge', async () => {
    await eng.call('start', net);
    expect(await t.host.mac('vbr0-nic')).toBe(net.mac);
    expect(await t.host.mac('vbr0')).toBe(net.mac);
    const master = (await t.host.exec(['readlink', '/sys/class/net/vbr0-nic/master'])).stdout.trim();
    expect(master.endsWith('/vbr0')).toBe(true);
  });

  it('removes it with the network', async () => {
    await eng.call('stop', net.name);
    expect(await snapshot(t.host)).toEqual(t.before);
  });
});
