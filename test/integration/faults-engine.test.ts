/**
 * Faults under the engine (real tools in a vh9- netns, the engine in its own process):
 * - a firewall transaction that fails: the test injects a conflicting object — an nft table of the
 *   same name created with `flags owner` by another process (`nft -i` that stays alive), which no
 *   other process may replace or delete — so the second network's `nft -f` fails. The start fails
 *   with a clear error (nft's own message), nothing of that network is left (no bridge, no dnsmasq,
 *   no state), and the first network is exactly as before (same dnsmasq, same ruleset);
 * - the state disk full: the engine runs in its own mount namespace (`unshare -m`) with a small
 *   tmpfs over its run dir; with the tmpfs filled, addHost fails with ENOSPC named in the error, the
 *   previous files (hostsfile, addn-hosts, state) are byte-for-byte intact, no temp file is left, the
 *   network keeps serving; once space is back the same addHost succeeds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nftNetworkTable } from '../../src/plan/firewall/safe.js';
import { cleanupAllNetns, createNetns, type Netns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import {
  buildDriver,
  type EngineDriver,
  runDirFor,
  settle,
  snapshot,
  testNetwork,
} from './engine-harness.js';

const skip = missingPrereqs(['ip', 'nft', 'dnsmasq', 'node', 'unshare', 'nsenter', 'mount']);

const netA = testNetwork({
  name: 'vh9fa',
  uuid: '6f3c1e2a-0000-4000-8000-0000000009a1',
  bridge: { name: 'vh9bra', stp: false, delay: 0 },
  mac: '52:54:00:5a:09:a1',
  ips: [
    {
      family: 'ipv4',
      address: '10.91.0.1',
      prefix: 24,
      dhcp: { ranges: [{ start: '10.91.0.100', end: '10.91.0.200' }], hosts: [] },
    },
  ],
});
const netB = testNetwork({
  name: 'vh9fb',
  uuid: '6f3c1e2a-0000-4000-8000-0000000009b1',
  bridge: { name: 'vh9brb', stp: false, delay: 0 },
  mac: '52:54:00:5a:09:b1',
  ips: [
    {
      family: 'ipv4',
      address: '10.92.0.1',
      prefix: 24,
      dhcp: { ranges: [{ start: '10.92.0.100', end: '10.92.0.200' }], hosts: [] },
    },
  ],
});

/** The engine driver, but inside `unshare -m` (its own mount namespace) in `ns`. */
async function spawnInMountNs(ns: Netns): Promise<{ drv: EngineDriver; pid: number }> {
  const { EngineDriver: Drv } = await import('./engine-harness.js');
  // EngineDriver.spawn runs `ip netns exec NS node driver.js`; wrap node in unshare via a tiny shim.
  const child = spawn(
    'ip',
    ['netns', 'exec', ns.name, 'unshare', '-m', '--propagation', 'private', 'node', buildDriver()],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } },
  );
  // The private constructor is reached through a cast: same protocol, other argv.
  const drv = new (Drv as unknown as new (c: ChildProcess) => EngineDriver)(child);
  return { drv, pid: child.pid! };
}

describe.skipIf(skip)('faults under the engine', () => {
  let host: Netns;
  const drivers: EngineDriver[] = [];

  beforeAll(async () => {
    host = await createNetns('vh9-fe');
    await settle(host);
  });
  afterAll(async () => {
    for (const d of drivers) await d.end().catch(() => {});
    cleanupAllNetns();
  });

  it('a failing firewall transaction (conflicting owned nft table): clear error, previous state intact', async () => {
    const runDir = await runDirFor(host);
    const { drv } = await spawnInMountNs(host);
    drivers.push(drv);
    await drv.call('create', { runDir, firewall: 'nftables' });
    const a = await drv.call<{ dnsmasqPid: number }>('start', netA);
    await settle(host);
    const upA = await snapshot(host);

    // The conflicting object: B's table, owned by a live `nft -i` (nobody else may touch it).
    const table = nftNetworkTable(netB.name);
    const owner = spawn('ip', ['netns', 'exec', host.name, 'nft', '-i'], { stdio: ['pipe', 'pipe', 'pipe'] });
    owner.stdin!.write(`add table ip ${table} { flags owner ; }\n`);
    for (let i = 0; i < 50 && !(await host.exec(['nft', 'list', 'tables'])).stdout.includes(table); i++)
      await sleep(50);
    expect((await host.exec(['nft', 'list', 'tables'])).stdout).toContain(table);
    const withConflict = await snapshot(host);

    const r = await drv.raw('start', netB);
    expect(r.ok).toBe(false);
    expect(r.errorName).toBe('CommandError');
    expect(r.error).toMatch(/nft/);
    expect(r.error).toMatch(/Operation not permitted/);
    await settle(host);
    // Nothing of B left (no bridge, no dnsmasq, no rule), A as before, the conflict untouched.
    expect(await snapshot(host)).toEqual(withConflict);
    expect(await drv.call('info', netB.name)).toBeNull();
    const infoA = await drv.call<{ dnsmasqPid: number }>('info', netA.name);
    expect(infoA.dnsmasqPid).toBe(a.dnsmasqPid);

    // Conflict gone: B starts; then both stop and only A's former state is left.
    owner.stdin!.end();
    owner.kill('SIGTERM');
    for (let i = 0; i < 50 && (await host.exec(['nft', 'list', 'tables'])).stdout.includes(table); i++)
      await sleep(50);
    expect(await snapshot(host)).toEqual(upA);
    await drv.call('start', netB);
    await drv.call('stop', netB.name);
    await settle(host);
    expect(await snapshot(host)).toEqual(upA);
    await drv.call('stop', netA.name);
  });

  it('state disk full (tmpfs in the engine’s own mount namespace): clear error, old files intact', async () => {
    const runDir = join(host.dir, 'run-full');
    mkdirSync(runDir, { recursive: true, mode: 0o755 });
    const { drv, pid } = await spawnInMountNs(host);
    drivers.push(drv);
    const inNs = (argv: string[]) =>
      host.exec(['nsenter', '-t', String(pid), '-m', ...argv], { allowFail: true });
    await sleep(200); // unshare has exec'd node
    const m = await inNs(['mount', '-t', 'tmpfs', '-o', 'size=512k,mode=0755', 'vh9full', runDir]);
    expect(m.exitCode, m.stderr).toBe(0);
    // The mount is only in the engine's namespace: the test's view of runDir is still empty.
    expect((await host.exec(['findmnt', '-n', runDir], { allowFail: true })).stdout).toBe('');

    await drv.call('create', { runDir, firewall: 'nftables' });
    await drv.call('start', netA);
    await drv.call('addHost', netA.name, { mac: '52:54:00:09:00:01', ip: '10.91.0.11', hostname: 'one' });
    const files = [
      'dnsmasq/vh9fa.hostsfile',
      'dnsmasq/vh9fa.addnhosts',
      'networks/vh9fa.json',
      'networks/vh9fa.live',
    ];
    const read = async () => {
      const out: Record<string, string> = {};
      for (const f of files) out[f] = (await inNs(['cat', join(runDir, f)])).stdout;
      return out;
    };
    const before = await read();
    expect(before['dnsmasq/vh9fa.hostsfile']).toContain('52:54:00:09:00:01');

    // Fill the tmpfs.
    await inNs(['dd', 'if=/dev/zero', `of=${join(runDir, 'filler')}`, 'bs=4k']);
    const df = await inNs(['df', '--output=avail', runDir]);
    expect(Number(df.stdout.trim().split('\n').pop())).toBe(0);

    // Many reservations at once, so the new files cannot fit whatever tmpfs rounding gives.
    const big = Array.from({ length: 40 }, (_, i) => i);
    const results = await Promise.all(
      big.map((i) =>
        drv.raw('addHost', netA.name, {
          mac: `52:54:00:09:01:${i.toString(16).padStart(2, '0')}`,
          ip: `10.91.0.${20 + i}`,
          hostname: `h${i}-${'x'.repeat(50)}`,
        }),
      ),
    );
    const failed = results.filter((r) => !r.ok);
    expect(failed.length).toBeGreaterThan(0);
    for (const r of failed) expect(r.error).toMatch(/ENOSPC|no space left on device/i);
    // Which calls succeeded is recorded consistently: the files are either the old ones or carry
    // exactly the succeeded hosts; a failed host is nowhere.
    const after = await read();
    for (const r of failed) {
      const i = results.indexOf(r);
      const mac = `52:54:00:09:01:${i.toString(16).padStart(2, '0')}`;
      for (const f of files)
        expect(after[f]!.includes(mac), `${mac} in ${f} after its addHost failed`).toBe(false);
    }
    if (results.every((r) => !r.ok)) expect(after).toEqual(before);
    // No temp file left behind.
    const ls = await inNs(['find', runDir, '-name', '*.tmp']);
    expect(ls.stdout.trim()).toBe('');
    // Still serving: dnsmasq alive.
    const info = await drv.call<{ dnsmasqPid: number }>('info', netA.name);
    expect((await host.exec(['kill', '-0', String(info.dnsmasqPid)], { allowFail: true })).exitCode).toBe(0);

    // Space back: the same call works, the state holds every reservation that succeeded.
    await inNs(['rm', '-f', join(runDir, 'filler')]);
    const again = await drv.raw('addHost', netA.name, {
      mac: '52:54:00:09:00:02',
      ip: '10.91.0.12',
      hostname: 'two',
    });
    expect(again.ok, again.error).toBe(true);
    const final = await read();
    expect(final['dnsmasq/vh9fa.hostsfile']).toContain('52:54:00:09:00:02');
    expect(final['dnsmasq/vh9fa.hostsfile']).toContain('52:54:00:09:00:01');
    expect(final['networks/vh9fa.live']).toContain('52:54:00:09:00:02');
    // A reservation whose addHost failed never comes back with a later change.
    for (const r of failed) {
      const i = results.indexOf(r);
      const mac = `52:54:00:09:01:${i.toString(16).padStart(2, '0')}`;
      for (const f of files)
        expect(final[f]!.includes(mac), `${mac} in ${f} after a later change`).toBe(false);
    }
    const ok = results.filter((r) => r.ok).length;
    console.log(
      `disk full: ${failed.length} of ${results.length} addHost calls failed with ENOSPC, ${ok} succeeded`,
    );
    await drv.call('stop', netA.name);
    await inNs(['umount', runDir]);
  });
});
