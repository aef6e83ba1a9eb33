/**
 * Real dnsmasq under DnsmasqSupervisor, in namespaces this test makes: a "host" netns with a bridge,
 * guest netns whose veth peers are ports of it, busybox udhcpc as the DHCP client.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLeaseFile } from '../../src/dnsmasq/leases.js';
import { realProbe } from '../../src/dnsmasq/proc.js';
import { DnsmasqSupervisor } from '../../src/dnsmasq/supervisor.js';
import { CommandError } from '../../src/errors.js';
import { writeFileAtomic } from '../../src/util/atomic-write.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns, run, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const skip = missingPrereqs(['ip', 'busybox', 'dnsmasq']);

const MAC1 = '52:54:00:66:00:10';
const MAC2 = '52:54:00:66:00:11';

describe.skipIf(skip)('dnsmasq supervisor with a real dnsmasq', () => {
  let host: Netns;
  let guest1: Netns;
  let guest2: Netns;
  let sup: DnsmasqSupervisor;
  let conf: string;
  let pidFile: string;
  let leaseFile: string;
  let hostsFile: string;
  const timings: Record<string, number> = {};

  const newSupervisor = () =>
    new DnsmasqSupervisor({
      name: 'itest',
      confFile: conf,
      pidFile,
      leaseFile,
      netns: host.name,
      pollMs: 50,
    });

  beforeAll(async () => {
    host = await createNetns('vh6-');
    guest1 = await createNetns('vh6-');
    guest2 = await createNetns('vh6-');
    await host.addBridge('br0', { cidr: '10.66.0.1/24', mac: '52:54:00:66:00:01' });
    await link(host, 'vnet0', guest1, 'eth0', { macB: MAC1 });
    await link(host, 'vnet1', guest2, 'eth0', { macB: MAC2 });
    await host.addPort('br0', 'vnet0');
    await host.addPort('br0', 'vnet1');
    // dnsmasq drops to nobody: the hostsfile it re-reads on SIGHUP must be readable by it.
    chmodSync(host.dir, 0o755);
    conf = join(host.dir, 'itest.conf');
    pidFile = join(host.dir, 'itest.pid');
    leaseFile = join(host.dir, 'itest.leases');
    hostsFile = join(host.dir, 'itest.hostsfile');
    await writeFileAtomic(hostsFile, `${MAC1},10.66.0.50,guest1\n`);
    await writeFileAtomic(
      conf,
      [
        'strict-order',
        'no-resolv',
        'except-interface=lo',
        'bind-dynamic',
        'interface=br0',
        'dhcp-range=10.66.0.100,10.66.0.200,255.255.255.0',
        'dhcp-no-override',
        'dhcp-authoritative',
        'dhcp-lease-max=101',
        `dhcp-hostsfile=${hostsFile}`,
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await sup?.stop().catch(() => {});
    cleanupAllNetns();
    console.log('dnsmasq timings (ms):', JSON.stringify(timings));
  });

  it('start(): dnsmasq is up and serving, daemonized (not our child, own session)', async () => {
    sup = newSupervisor();
    const t0 = performance.now();
    const pid = await sup.start();
    timings.start = Math.round(performance.now() - t0);
    expect(realProbe.cmdline(pid)).toEqual(sup.argv);
    const st = realProbe.stat(pid)!;
    expect(st.ppid).not.toBe(process.pid);
    const sid = Number(
      (await host.exec(['ps', '-o', 'sid=', '-p', String(pid)], { allowFail: true })).stdout.trim() || '0',
    );
    if (sid) expect(sid).not.toBe(process.pid);
    expect(host.pids()).toContain(pid);
    expect(sup.state).toBe('running');
  });

  it('a guest gets its reserved address; the lease appears in the lease file', async () => {
    const t0 = performance.now();
    const lease = await guestDhcp(guest1, 'eth0', { hostname: 'guest1' });
    timings.reservedLease = Math.round(performance.now() - t0);
    expect(lease.ip).toBe('10.66.0.50');
    expect(lease.router).toBe('10.66.0.1');
    expect(lease.dns).toEqual(['10.66.0.1']);
    const leases = await readLeaseFile(leaseFile);
    expect(leases).toEqual([
      expect.objectContaining({ family: 'ipv4', mac: MAC1, ip: '10.66.0.50', hostname: 'guest1' }),
    ]);
  });

  it('a hostsfile entry added + reload() applies to the next lease', async () => {
    await writeFileAtomic(hostsFile, `${MAC1},10.66.0.50,guest1\n${MAC2},10.66.0.51,guest2\n`);
    const pid = sup.pid;
    await sup.reload();
    expect(sup.pid).toBe(pid);
    const lease = await guestDhcp(guest2, 'eth0');
    expect(lease.ip).toBe('10.66.0.51');
    const leases = await readLeaseFile(leaseFile);
    expect(leases.map((l) => [l.mac, l.ip]).sort()).toEqual([
      [MAC1, '10.66.0.50'],
      [MAC2, '10.66.0.51'],
    ]);
  });

  it('kill -9: restarted and serving within 1 s, with its leases', async () => {
    const old = sup.pid!;
    const restarted = new Promise<{ pid: number; ms: number }>((resolve) =>
      sup.once('restarted', (e) => resolve({ pid: e.pid, ms: e.ms })),
    );
    const t0 = performance.now();
    process.kill(old, 'SIGKILL');
    const r = await restarted;
    timings.killToRestarted = Math.round(performance.now() - t0);
    timings.restartCommand = Math.round(r.ms);
    expect(r.pid).not.toBe(old);
    expect(timings.killToRestarted).toBeLessThan(1000);
    expect(realProbe.cmdline(r.pid)).toEqual(sup.argv);
    // serving: the guest renews and gets the same reserved address; the leases survived
    const lease = await guestDhcp(guest1, 'eth0');
    timings.leaseAfterRestart = Math.round(performance.now() - t0);
    expect(timings.leaseAfterRestart).toBeLessThan(3000);
    expect(lease.ip).toBe('10.66.0.50');
    const leases = await readLeaseFile(leaseFile);
    expect(leases.map((l) => l.ip).sort()).toEqual(['10.66.0.50', '10.66.0.51']);
  });

  it('adopt(): a fresh supervisor takes over the running dnsmasq and supervises it', async () => {
    const pid = sup.pid!;
    sup.detach();
    await sleep(150);
    expect(realProbe.cmdline(pid)).toBeDefined(); // detach left it running
    const fresh = newSupervisor();
    expect(await fresh.adopt()).toBe(true);
    expect(fresh.pid).toBe(pid);
    sup = fresh;
    await sup.reload();
    const died = new Promise<number>((resolve) => sup.once('restarted', (e) => resolve(e.pid)));
    process.kill(pid, 'SIGKILL');
    const newPid = await died;
    expect(newPid).not.toBe(pid);
    expect((await guestDhcp(guest2, 'eth0')).ip).toBe('10.66.0.51');
  });

  it("a config dnsmasq rejects: start() throws a CommandError with dnsmasq's message, nothing left running", async () => {
    const badConf = join(host.dir, 'bad.conf');
    await writeFileAtomic(badConf, 'interface=br0\nno-such-option=1\n');
    const bad = new DnsmasqSupervisor({
      name: 'bad',
      confFile: badConf,
      pidFile: join(host.dir, 'bad.pid'),
      leaseFile: join(host.dir, 'bad.leases'),
      netns: host.name,
    });
    const err = await bad.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).step).toBe('dnsmasq: start bad');
    expect((err as CommandError).stderr).toMatch(/bad option|no-such-option/);
    expect(bad.state).toBe('idle');
    const ours = host.pids().filter((p) => realProbe.cmdline(p)?.some((a) => a.includes('bad.conf')));
    expect(ours).toEqual([]);
  });

  it('adopt() refuses a pid file naming some other process', async () => {
    const other = host.spawn(['sleep', '30']);
    await sleep(50);
    const fake = join(host.dir, 'other.pid');
    writeFileSync(fake, `${other.child.pid}\n`);
    const s = new DnsmasqSupervisor({
      name: 'other',
      confFile: conf,
      pidFile: fake,
      leaseFile,
      netns: host.name,
    });
    expect(await s.adopt()).toBe(false);
    other.kill('SIGKILL');
  });

  it('survives the exit of the process that started it; adopted afterwards', async () => {
    await sup.stop();
    // another Node process starts dnsmasq through the supervisor and exits
    const script = join(host.dir, 'starter.ts');
    const src = join(projectRoot, 'src', 'dnsmasq', 'supervisor.ts');
    writeFileSync(
      script,
      `import { DnsmasqSupervisor } from ${JSON.stringify(src)};\n` +
        `const s = new DnsmasqSupervisor(${JSON.stringify({ name: 'itest', confFile: conf, pidFile, leaseFile, netns: host.name })});\n` +
        'console.log(await s.start());\n',
    );
    const out = await run([
      'node',
      '--import',
      join(projectRoot, 'test', 'helpers', 'ts-register.mjs'),
      script,
    ]);
    const pid = Number(out.stdout.trim());
    expect(pid).toBeGreaterThan(0);
    await sleep(100);
    expect(realProbe.cmdline(pid)).toEqual(sup.argv);
    sup = newSupervisor();
    expect(await sup.adopt()).toBe(true);
    expect(sup.pid).toBe(pid);
    expect((await guestDhcp(guest1, 'eth0')).ip).toBe('10.66.0.50');
  });

  it('stop(): no dnsmasq left, pid file removed, not restarted', async () => {
    const pid = sup.pid!;
    const t0 = performance.now();
    await sup.stop();
    timings.stop = Math.round(performance.now() - t0);
    const st = realProbe.stat(pid);
    expect(st === undefined || st.state === 'Z').toBe(true);
    expect(await realProbe.readPidFile(pidFile)).toBeUndefined();
    await sleep(200);
    const left = host.pids().filter((p) => realProbe.cmdline(p)?.[0] === 'dnsmasq');
    expect(left).toEqual([]);
    expect(sup.state).toBe('stopped');
  });
});
