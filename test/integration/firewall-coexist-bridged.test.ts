/**
 * Bridge mode next to a foreign FORWARD drop (issue 12, 3b), both backends, in namespaces of this
 * test only. br_netfilter is built into this kernel and every new namespace has
 * `net.bridge.bridge-nf-call-iptables=1`, so frames bridged between two ports of the host's bridge
 * pass iptables' FORWARD: Docker's `FORWARD DROP` (its rule set as moby's iptablesdoc lists it,
 * test/firewall/fixtures/docker28.rules; iptables-nft and legacy) cuts a bridged guest off its LAN.
 * With `coexist` the engine accepts what is bridged on the network's bridge (physdev
 * --physdev-is-bridged) at the head of that FORWARD: the guest gets DHCP from the LAN's dnsmasq and
 * reaches a LAN host, with Docker's rules there before start and arriving later; stop leaves exactly
 * Docker's rules. A control run without the layer shows the cut.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';
import {
  EngineDriver,
  guestMac,
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
  'iptables-nft-restore',
  'iptables-legacy-restore',
]);

const docker = readFileSync(join(projectRoot, 'test/firewall/fixtures/docker28.rules'), 'utf8');

function bridgeNet(): Network {
  const net = testNetwork({
    name: 'vb12',
    forward: { mode: 'bridge', interfaces: [] },
    bridge: { name: 'br0' },
  });
  delete net.mac;
  return net;
}

for (const backend of ['nftables', 'iptables'] as const) {
  describe.skipIf(skip)(`bridge mode next to Docker's FORWARD DROP (${backend} backend)`, () => {
    let host: Netns;
    let lan: Netns;
    let guest: Netns;
    let eng: EngineDriver;
    let runDir: string;
    let legacyUsed = false;

    const snap = async () => {
      const s = await snapshot(host);
      if (legacyUsed)
        s.legacy = (await host.exec(['iptables-legacy-save'])).stdout
          .replace(/\[\d+:\d+\]/g, '[0:0]')
          .replace(/^#.*$/gm, '')
          .split('\n')
          .filter((l) => l.trim())
          .join('\n');
      delete s.procs;
      return s;
    };
    const reset = async () => {
      await host.exec(['nft', 'flush', 'ruleset']);
      if (legacyUsed)
        await host.exec(['iptables-legacy-restore'], {
          input:
            '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n',
        });
    };
    const reachable = async () => {
      await guest.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
      const lease = await guestDhcp(guest, 'eth0', { tries: 3 }).then(
        (l) => l.ip,
        () => 'no lease',
      );
      if (lease !== '192.168.50.77')
        await guest.exec(['ip', 'addr', 'add', '192.168.50.77/24', 'dev', 'eth0'], { allowFail: true });
      return { lease, lanHost: (await tcpProbe(guest, '192.168.50.1', 8081)) ?? 'failed' };
    };
    const ALL_OK = { lease: '192.168.50.77', lanHost: '192.168.50.77' };
    const run = async (driver: EngineDriver, between?: () => Promise<void>) => {
      await driver.call('start', bridgeNet());
      try {
        await driver.call('attachPort', 'vb12', 'vnet0');
        const first = await reachable();
        if (!between) return first;
        expect(first).toEqual(ALL_OK);
        await between();
        await waitFor(
          async () => (await tcpProbe(guest, '192.168.50.1', 8081)) === '192.168.50.77',
          5000,
          'LAN host after the rules arrived',
        );
        return await reachable();
      } finally {
        await driver.call('stop', 'vb12');
      }
    };

    beforeAll(async () => {
      host = await createNetns('vb12-h');
      lan = await createNetns('vb12-l');
      guest = await createNetns('vb12-g');
      await link(host, 'eth0', lan, 'lan0');
      await lan.addAddr('lan0', '192.168.50.1/24');
      await link(host, 'vnet0', guest, 'eth0', { macB: guestMac(0) });
      await host.ipBatch([
        'link add br0 type bridge stp_state 0 forward_delay 0',
        'link set eth0 master br0',
        'addr add 192.168.50.2/24 dev br0',
        'link set br0 up',
      ]);
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
        `--dhcp-host=${guestMac(0)},192.168.50.77`,
        `--dhcp-leasefile=${lan.dir}/leases`,
        `--pid-file=${lan.dir}/pid`,
      ]);
      const srv = peerEcho(lan, 8081);
      await waitFor(() => srv.output().stdout.includes('listening'), 5000, 'LAN server');
      await settle(host);
      expect((await host.exec(['sysctl', '-n', 'net.bridge.bridge-nf-call-iptables'])).stdout.trim()).toBe(
        '1',
      );
      runDir = await runDirFor(host);
      eng = EngineDriver.spawn(host);
      await eng.call('create', { runDir, firewall: backend, coexist: true });
    });
    afterAll(async () => {
      await eng?.end().catch(() => {});
      cleanupAllNetns();
    });

    for (const variant of ['nft', 'legacy'] as const) {
      const apply = () =>
        host.exec([`iptables-${variant}-restore`, '--noflush', '-w'], { input: docker }).then(() => {});
      let theirs: Record<string, string>;

      it(`Docker (iptables-${variant}) present before start: DHCP from the LAN and the LAN host reachable`, async () => {
        await reset();
        if (variant === 'legacy') legacyUsed = true;
        await apply();
        theirs = await snap();
        expect(await run(eng)).toEqual(ALL_OK);
        expect(await snap()).toEqual(theirs);
      });

      it(`Docker (iptables-${variant}) arriving while the network runs`, async () => {
        await reset();
        expect(await run(eng, apply)).toEqual(ALL_OK);
        expect(await snap()).toEqual(theirs);
      });

      it(`control (iptables-${variant}): without the layer the bridged guest is cut off`, async () => {
        await reset();
        await apply();
        const bare = EngineDriver.spawn(host);
        try {
          await bare.call('create', { runDir, firewall: backend });
          expect(await run(bare)).toEqual({ lease: 'no lease', lanHost: 'failed' });
        } finally {
          await bare.end();
        }
      });
    }
  });
}
