/**
 * Lost rules come back (issue 12), both backends, in namespaces of this test only: the engine runs
 * in the "host" namespace with `coexist` on (as virtnetd runs it) and a NAT network with a guest.
 * Someone else wipes the ruleset — `nft flush ruleset` (what Debian's nftables.service does),
 * `iptables -F`, `iptables-restore` of an unrelated file — while the guest pings the uplink: the
 * watcher (nft monitor) notices, the rules come back exactly as they were (no duplicate, also after
 * 100 flushes in a row), the repair is logged once at warning with what was missing and emitted as a
 * `repaired` event, and the guest's traffic flows. Stop leaves the namespace as before start.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns, sleep } from '../helpers/netns.js';
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

const skip = missingPrereqs(['ip', 'nft', 'iptables-nft-restore', 'dnsmasq', 'busybox', 'node']);

const MAC = '52:54:00:aa:00:01';
const NET = 'vr12';

function network(): Network {
  return testNetwork({
    name: NET,
    bridge: { name: 'vrbr0', stp: false, delay: 0 },
    ips: [
      {
        family: 'ipv4',
        address: '10.89.0.1',
        prefix: 24,
        dhcp: { ranges: [], hosts: [{ mac: MAC, ip: '10.89.0.50', name: 'resv1' }] },
      },
    ],
  });
}

interface Ev {
  kind: string;
  name?: string;
  missing?: string[];
}

for (const backend of ['nftables', 'iptables'] as const) {
  describe.skipIf(skip)(`rules come back after a foreign flush (${backend} backend)`, () => {
    let host: Netns;
    let up: Netns;
    let g: Netns;
    let eng: EngineDriver;
    let before: Record<string, string>;
    let baseline: string;
    const events: Ev[] = [];

    /** The whole ruleset, both views (nft and iptables-nft), counters and empty built-ins dropped. */
    const rules = async () => {
      const s = await snapshot(host);
      return `${s.nft}\n----\n${s.iptables}`;
    };
    const repairs = async () => {
      events.push(...(await eng.call<Ev[]>('events')));
      return events.filter((e) => e.kind === 'repaired');
    };
    const warnings = () =>
      eng.stderr
        .split('\n')
        .filter((l) => l.includes('"level":"warning"') && l.includes('firewall rules repaired'));

    beforeAll(async () => {
      host = await createNetns('vr12-h');
      up = await createNetns('vr12-u');
      g = await createNetns('vr12-g');
      await link(host, 'wan0', up, 'up0');
      await host.addAddr('wan0', '192.0.2.2/24');
      await up.addAddr('up0', '192.0.2.1/24');
      await host.addRoute('default', { via: '192.0.2.1' });
      await link(host, 'vnet0', g, 'eth0', { macB: MAC });
      await settle(host);
      before = await snapshot(host);
      eng = EngineDriver.spawn(host);
      await eng.call('create', {
        runDir: await runDirFor(host),
        firewall: backend,
        coexist: true,
        logToStderr: 'warning',
      });
      await eng.call('start', network());
      await eng.call('attachPort', NET, 'vnet0');
      expect((await guestDhcp(g, 'eth0')).ip).toBe('10.89.0.50');
      const srv = peerEcho(up, 8081);
      await waitFor(() => srv.output().stdout.includes('listening'), 5000, 'uplink server');
      baseline = await rules();
    });
    afterAll(async () => {
      await eng?.end().catch(() => {});
      cleanupAllNetns();
    });

    it('nft flush ruleset while the guest pings: rules back exactly, one warning, a repaired event, traffic flows', async () => {
      const ping = g.spawn(['busybox', 'ping', '-i', '0.05', '192.0.2.1']);
      try {
        await waitFor(() => /seq=5 /.test(ping.output().stdout), 5000, 'pings');
        const warned = warnings().length;
        await repairs();
        const seen = events.length;
        await host.exec(['nft', 'flush', 'ruleset']);
        await waitFor(async () => (await rules()) === baseline, 5000, 'rules back');
        await waitFor(async () => (await repairs()).length > 0, 2000, 'repaired event');
        const got = events.slice(seen).filter((e) => e.kind === 'repaired');
        expect(got).toHaveLength(1);
        expect(got[0]!.name).toBe(NET);
        expect(got[0]!.missing!.join(' ')).toMatch(new RegExp(`own ${backend} rules absent`));
        // Once: the watcher's own repair is seen by nft monitor too, and then finds nothing missing.
        await sleep(300);
        expect(warnings().length - warned).toBe(1);
        expect(warnings().at(-1)).toMatch(new RegExp(`own ${backend} rules absent`));
        // The ping goes on, and a new connection is masqueraded again.
        const replies = (ping.output().stdout.match(/bytes from/g) ?? []).length;
        await waitFor(
          () => (ping.output().stdout.match(/bytes from/g) ?? []).length > replies + 3,
          3000,
          'pings after the repair',
        );
        expect(await tcpProbe(g, '192.0.2.1', 8081)).toBe('192.0.2.2');
        expect(await rules()).toBe(baseline);
      } finally {
        ping.kill();
      }
    });

    it('100 flushes in a row: the rules are back exactly once each, nothing duplicated', async () => {
      for (let i = 0; i < 100; i++) {
        await host.exec(['nft', 'flush', 'ruleset']);
        if (i % 3 === 0) await sleep(i % 40);
      }
      await waitFor(async () => (await rules()) === baseline, 5000, 'rules back');
      await sleep(300);
      expect(await rules()).toBe(baseline);
      expect(await tcpProbe(g, '192.0.2.1', 8081)).toBe('192.0.2.2');
    });

    it('iptables -F and iptables-restore of an unrelated file next to Docker: own rules and the layer come back', async () => {
      const docker = readFileSync(join(projectRoot, 'test/firewall/fixtures/docker28.rules'), 'utf8');
      await host.exec(['iptables-nft-restore', '--noflush', '-w'], { input: docker });
      // The layer (nftables backend) arrives; traffic flows past Docker's FORWARD DROP.
      await waitFor(async () => (await tcpProbe(g, '192.0.2.1', 8081)) === '192.0.2.2', 5000, 'NAT out');
      const jumps = async () =>
        (await host.exec(['iptables-nft-save', '-t', 'filter'])).stdout
          .split('\n')
          .filter((l) => /^-A (INPUT|OUTPUT|FORWARD) -j VN-/.test(l))
          .sort();
      const withDocker = await jumps();
      expect(withDocker.length).toBeGreaterThan(0);
      await repairs();
      for (const wipe of [
        () => host.exec(['iptables', '-w', '-F']),
        () =>
          host.exec(['iptables-restore', '-w'], {
            input:
              '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n',
          }),
      ]) {
        const seen = events.length;
        await wipe();
        await waitFor(
          async () =>
            (await repairs()).length > events.slice(0, seen).filter((e) => e.kind === 'repaired').length,
          5000,
          'repaired event',
        );
        await waitFor(async () => (await tcpProbe(g, '192.0.2.1', 8081)) === '192.0.2.2', 5000, 'NAT out');
        // Each of our jumps exactly once (the layer's and, iptables backend, the network's own).
        const now = await jumps();
        expect(now).toEqual([...new Set(now)]);
        expect(now.length).toBe(withDocker.length);
      }
    });

    it('stop leaves the namespace as before start', async () => {
      await host.exec(['nft', 'flush', 'ruleset']);
      await waitFor(async () => (await rules()) === baseline, 5000, 'rules back');
      await eng.call('stop', NET);
      await sleep(200);
      const after = await snapshot(host);
      delete after.procs;
      const b = { ...before };
      delete b.procs;
      expect(after).toEqual(b);
    });
  });
}
