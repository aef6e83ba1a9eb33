/**
 * libvirt runs no dnsmasq for a network with no DHCP (no range, no host on any <ip>) and
 * `<dns enable='no'/>` (networkStartDhcpDaemon): real bridge, real firewall, real dnsmasq in the
 * test's own namespace. The same network with DNS left on does get a dnsmasq (the control).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import { cleanupAllNetns, createNetns, link } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { EngineDriver, snapshot, type Topology, testNetwork, topology } from './engine-harness.js';

const skip = missingPrereqs(['ip', 'nft', 'dnsmasq', 'node']);

function isolated(name: string, dnsEnabled: boolean): Network {
  return testNetwork({
    name,
    forward: { mode: 'none', interfaces: [] },
    bridge: { name: 'vbr0', stp: false, delay: 0 },
    ips: [{ family: 'ipv4', address: '10.89.0.1', prefix: 24 }],
    dns: { ...(dnsEnabled ? {} : { enable: false }), forwarders: [], txts: [], srvs: [], hosts: [] },
  });
}

function dnsmasqPids(t: Topology): number[] {
  return t.host.pids().filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'dnsmasq';
    } catch {
      return false;
    }
  });
}

describe.skipIf(skip)('engine: isolated network without DHCP and DNS runs no dnsmasq', () => {
  let t: Topology;
  let eng: EngineDriver;

  beforeAll(async () => {
    t = await topology(createNetns, link, 0);
    eng = EngineDriver.spawn(t.host);
    await eng.call('create', { runDir: t.runDir, firewall: 'nftables' });
  });
  afterAll(async () => {
    await eng?.end().catch(() => {});
    cleanupAllNetns();
  });

  it("with <dns enable='no'/>: bridge up with its address, no dnsmasq; stop leaves nothing", async () => {
    const net = isolated('vh13nodns', false);
    await eng.call('start', net);
    const addr = await t.host.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'vbr0']);
    expect(addr.stdout).toContain('10.89.0.1/24');
    expect(dnsmasqPids(t)).toEqual([]);
    await eng.call('stop', net.name);
    expect(await snapshot(t.host)).toEqual(t.before);
  });

  it('control: the same network with DNS on gets a dnsmasq', async () => {
    const net = isolated('vh13dns', true);
    await eng.call('start', net);
    expect(dnsmasqPids(t)).toHaveLength(1);
    await eng.call('stop', net.name);
    expect(dnsmasqPids(t)).toEqual([]);
    expect(await snapshot(t.host)).toEqual(t.before);
  });
});
