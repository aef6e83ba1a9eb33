/**
 * Guests keep their network next to Docker and ufw (issue 12), both backends, in namespaces of this
 * test only. The engine runs in the "host" namespace with `coexist` on (as virtnetd runs it); a guest
 * namespace on the bridge, an uplink namespace for the world. The other programs' rules:
 * - Docker 27 and 28: their rule sets exactly as moby's own generated iptablesdoc lists them
 *   (test/firewall/fixtures/docker2{7,8}.rules), applied with iptables-nft-restore or
 *   iptables-legacy-restore — both variants;
 * - Docker 29 with its own nftables backend: tables `ip docker-bridges` / `ip6 docker-bridges` as
 *   moby's generated nftablesdoc lists them (test/firewall/fixtures/docker29-nft.nft), applied with
 *   `nft -f`, once as is (filter-FORWARD policy accept: it only judges docker0's traffic) and once
 *   with the policy drop dockerd sets when it switched ip_forward on itself;
 * - ufw: the real Debian ufw, `ufw --force enable`, sealed in a mount namespace over /etc/ufw and
 *   /etc/default/ufw (copies), so the host's ufw config is never touched.
 * Each scenario, with the program's rules there before the network starts and arriving while it
 * runs: the guest gets its DHCP lease, resolves through dnsmasq, reaches the uplink masqueraded (the
 * uplink sees the host's address), and a port forward from the uplink reaches the guest. After stop
 * the ruleset is exactly the program's own again. A control run without the layer shows that the
 * program's rules really cut the guest off.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import {
  planPortForwards,
  renderPortForwardsIptables,
  renderPortForwardsNftables,
} from '../../src/plan/firewall/portforward.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns } from '../helpers/netns.js';
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
  'iptables-nft-restore',
  'iptables-legacy-restore',
  'iptables-legacy-save',
  'dnsmasq',
  'busybox',
  'node',
  'ufw',
  'unshare',
]);

const MAC = '52:54:00:aa:00:01';
const NET = 'vc12';
const GUEST_IP = '10.88.0.50';

function network(): Network {
  return testNetwork({
    name: NET,
    bridge: { name: 'vcbr0', stp: false, delay: 0 },
    ips: [
      {
        family: 'ipv4',
        address: '10.88.0.1',
        prefix: 24,
        dhcp: { ranges: [], hosts: [{ mac: MAC, ip: GUEST_IP, name: 'resv1' }] },
      },
    ],
  });
}

const forwardInput = {
  network: NET,
  bridge: 'vcbr0',
  domain: 'web1',
  subnets: ['10.88.0.0/24'],
  forwards: [
    { proto: 'tcp' as const, hostPort: 8080, guestIp: GUEST_IP, guestPort: 9090, family: 'ipv4' as const },
  ],
};

const fixture = (name: string) => readFileSync(join(projectRoot, 'test/firewall/fixtures', name), 'utf8');

interface Foreign {
  name: string;
  legacy: boolean;
  apply: (host: Netns) => Promise<void>;
}

const restore = (tool: string, file: string) => async (host: Netns) => {
  await host.exec([tool, '--noflush', '-w'], { input: fixture(file) });
};

const nftFile = (file: string) => async (host: Netns) => {
  await host.exec(['nft', '-f', '-'], { input: fixture(file) });
};

/** The real ufw, enabled in `host`, its config dirs replaced by copies in a private mount namespace. */
async function ufwEnable(host: Netns): Promise<void> {
  const d = mkdtempSync(join(tmpdir(), 'vc12-ufw-'));
  cpSync('/etc/ufw', join(d, 'etc-ufw'), { recursive: true });
  // IPT_SYSCTL empty: ufw leaves the namespace's sysctls alone (the engine owns ip_forward here).
  const defaults = readFileSync('/etc/default/ufw', 'utf8').replace(/^IPT_SYSCTL=.*$/m, 'IPT_SYSCTL=');
  writeFileSync(join(d, 'default-ufw'), defaults);
  const r = await host.exec(
    [
      'unshare',
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      `mount --bind "$0/etc-ufw" /etc/ufw && mount --bind "$0/default-ufw" /etc/default/ufw && ufw --force enable && ufw status verbose`,
      d,
    ],
    { allowFail: true },
  );
  if (r.exitCode !== 0 || !/Status: active/.test(r.stdout))
    throw new Error(`ufw enable failed: ${r.stdout}${r.stderr}`);
  expect(r.stdout).toMatch(/Default: deny \(incoming\), allow \(outgoing\)/);
  const filter = (await host.exec(['iptables-nft-save', '-t', 'filter'])).stdout;
  expect(filter).toMatch(/^:INPUT DROP/m);
  expect(filter).toMatch(/^:FORWARD DROP/m);
}

const FOREIGN: Foreign[] = [
  {
    name: 'Docker 27 (iptables-nft)',
    legacy: false,
    apply: restore('iptables-nft-restore', 'docker27.rules'),
  },
  {
    name: 'Docker 28 (iptables-nft)',
    legacy: false,
    apply: restore('iptables-nft-restore', 'docker28.rules'),
  },
  { name: 'ufw (real, iptables-nft)', legacy: false, apply: ufwEnable },
  {
    name: 'Docker 29 (nftables backend)',
    legacy: false,
    apply: nftFile('docker29-nft.nft'),
  },
  {
    // What dockerd 29 does when it had to switch ip_forward on itself (nftabler FilterForwardDrop).
    name: 'Docker 29 (nftables backend, filter-FORWARD policy drop)',
    legacy: false,
    apply: async (host) => {
      await nftFile('docker29-nft.nft')(host);
      await host.exec(['nft', 'chain', 'ip', 'docker-bridges', 'filter-FORWARD', '{ policy drop; }']);
    },
  },
  // Legacy last: once a legacy table exists in a namespace it stays.
  {
    name: 'Docker 28 (iptables-legacy)',
    legacy: true,
    apply: restore('iptables-legacy-restore', 'docker28.rules'),
  },
  {
    name: 'Docker 27 (iptables-legacy)',
    legacy: true,
    apply: restore('iptables-legacy-restore', 'docker27.rules'),
  },
];

for (const backend of ['nftables', 'iptables'] as const) {
  describe.skipIf(skip)(`guests next to Docker and ufw (${backend} backend)`, () => {
    let host: Netns;
    let up: Netns;
    let g: Netns;
    let eng: EngineDriver;
    let runDir: string;
    let legacyUsed = false;

    const snap = async () => {
      const s = await snapshot(host);
      // Reading legacy tables creates them: only once a scenario used them.
      if (legacyUsed) {
        s.legacy = (await host.exec(['iptables-legacy-save'])).stdout
          .replace(/\[\d+:\d+\]/g, '[0:0]')
          .replace(/^#.*$/gm, '')
          .split('\n')
          .filter((l) => l.trim())
          .join('\n');
      }
      delete s.procs; // the echo servers belong to the test
      return s;
    };

    /** The test's own namespace back to no rules at all (never a foreign one's: this is ours). */
    const reset = async () => {
      await host.exec(['nft', 'flush', 'ruleset']);
      if (legacyUsed) {
        await host.exec(['iptables-legacy-restore'], {
          input:
            '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n',
        });
      }
    };

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

    const start = async (driver: EngineDriver) => {
      await driver.call('start', network());
      await driver.call('attachPort', NET, 'vnet0');
      await forward().add();
    };
    const stop = async (driver: EngineDriver) => {
      await forward().del();
      await driver.call('stop', NET);
    };
    /** After a failed scenario: the network down, so that the next one starts clean. */
    const ensureStopped = async (driver: EngineDriver) => {
      if ((await driver.call('info', NET)) === null) return;
      await forward()
        .del()
        .catch(() => {});
      await driver.call('stop', NET).catch(() => {});
    };

    /** What the guest must have; each a string so a failure says which one broke. */
    const reachable = async () => {
      const out: Record<string, string> = {};
      await g.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
      const lease = await guestDhcp(g, 'eth0', { tries: 3 }).then(
        (l) => l.ip,
        (e: Error) => `no lease: ${e.message.slice(0, 80)}`,
      );
      out.lease = lease;
      if (lease !== GUEST_IP) {
        // Without a lease nothing else can work; give it the address to see the rest.
        await g.exec(['ip', 'addr', 'add', `${GUEST_IP}/24`, 'dev', 'eth0'], { allowFail: true });
        await g.exec(['ip', 'route', 'replace', 'default', 'via', '10.88.0.1'], { allowFail: true });
      }
      const dns = await g.exec(['busybox', 'nslookup', '-type=a', 'resv1', '10.88.0.1'], {
        allowFail: true,
        timeoutMs: 8000,
      });
      out.dns = dns.stdout.includes(GUEST_IP) ? 'ok' : 'failed';
      out.natOut = (await tcpProbe(g, '192.0.2.1', 8081)) ?? 'failed';
      out.portForward = (await tcpProbe(up, '192.0.2.2', 8080)) ?? 'failed';
      return out;
    };
    const ALL_OK = { lease: GUEST_IP, dns: 'ok', natOut: '192.0.2.2', portForward: '192.0.2.1' };

    beforeAll(async () => {
      host = await createNetns('vc12-h');
      up = await createNetns('vc12-u');
      g = await createNetns('vc12-g');
      await link(host, 'wan0', up, 'up0');
      await host.addAddr('wan0', '192.0.2.2/24');
      await up.addAddr('up0', '192.0.2.1/24');
      await host.addRoute('default', { via: '192.0.2.1' });
      await link(host, 'vnet0', g, 'eth0', { macB: MAC });
      await settle(host);
      runDir = await runDirFor(host);
      eng = EngineDriver.spawn(host);
      await eng.call('create', { runDir, firewall: backend, coexist: true });
      const a = peerEcho(up, 8081);
      const b = peerEcho(g, 9090);
      await waitFor(
        () => a.output().stdout.includes('listening') && b.output().stdout.includes('listening'),
        5000,
        'echo servers',
      );
    });
    afterAll(async () => {
      await eng?.end().catch(() => {});
      cleanupAllNetns();
    });

    it('without any other program: everything works, stop leaves nothing', async () => {
      const before = await snap();
      await start(eng);
      expect(await reachable()).toEqual(ALL_OK);
      await stop(eng);
      expect(await snap()).toEqual(before);
    });

    for (const f of FOREIGN) {
      let theirs: Record<string, string>;
      it(`${f.name} present before the network starts`, async () => {
        await reset();
        if (f.legacy) legacyUsed = true;
        await f.apply(host);
        theirs = await snap();
        try {
          await start(eng);
          expect(await reachable()).toEqual(ALL_OK);
          await stop(eng);
        } finally {
          await ensureStopped(eng);
        }
        expect(await snap()).toEqual(theirs);
      });

      it(`${f.name} arriving while the network runs`, async () => {
        await reset();
        try {
          await start(eng);
          expect(await reachable()).toEqual(ALL_OK);
          await f.apply(host);
          // The watcher adds the layer (nft monitor for iptables-nft, the legacy poll for legacy).
          await waitFor(async () => (await tcpProbe(g, '192.0.2.1', 8081)) === '192.0.2.2', 5000, 'NAT out');
          expect(await reachable()).toEqual(ALL_OK);
          await stop(eng);
        } finally {
          await ensureStopped(eng);
        }
        expect(await snap()).toEqual(theirs);
      });
    }

    it('control: without the layer Docker 29 with filter-FORWARD policy drop cuts the guest off', async () => {
      await reset();
      await FOREIGN.find((f) => f.name.includes('Docker 29') && f.name.includes('policy drop'))!.apply(host);
      const bare = EngineDriver.spawn(host);
      try {
        await bare.call('create', { runDir, firewall: backend });
        await start(bare);
        const got = await reachable();
        expect(got.natOut).toBe('failed');
        expect(got.portForward).toBe('failed');
        await stop(bare);
      } finally {
        await ensureStopped(bare);
        await bare.end();
      }
    });

    it('control: without the layer the same rules cut the guest off', async () => {
      // nftables backend: Docker in iptables-nft; iptables backend (iptables-nft): Docker in legacy.
      await reset();
      await (backend === 'nftables'
        ? restore('iptables-nft-restore', 'docker28.rules')
        : restore('iptables-legacy-restore', 'docker28.rules'))(host);
      const bare = EngineDriver.spawn(host);
      try {
        await bare.call('create', { runDir, firewall: backend });
        await start(bare);
        const got = await reachable();
        expect(got.natOut).toBe('failed');
        expect(got.portForward).toBe('failed');
        await stop(bare);
      } finally {
        await ensureStopped(bare);
        await bare.end();
      }
    });
  });
}
