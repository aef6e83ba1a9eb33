import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cleanupAllNetns,
  createNetns,
  guestDhcp,
  link,
  liveNetns,
  parseLeaseRecord,
  sleep,
  startGuestDhcp,
  uniqueIfname,
} from './netns.js';
import { missingPrereqs } from './require.js';

const PREFIX = 'vh6-';
const skip = missingPrereqs(['ip', 'busybox']);

const netnsList = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const rootLinks = () => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('parseLeaseRecord', () => {
  it('reads what the udhcpc script writes', () => {
    const l = parseLeaseRecord(
      'ip=10.1.2.3\nmask=24\nsubnet=255.255.255.0\nrouter=10.1.2.1 10.1.2.254\ndns=10.1.2.1 9.9.9.9\ndomain=\nhostname=\nlease=3600\nserverid=10.1.2.1\n',
    );
    expect(l).toEqual({
      ip: '10.1.2.3',
      prefix: 24,
      subnet: '255.255.255.0',
      router: '10.1.2.1',
      dns: ['10.1.2.1', '9.9.9.9'],
      leaseSeconds: 3600,
      serverId: '10.1.2.1',
    });
  });
});

describe('uniqueIfname', () => {
  it('gives distinct names of at most 15 characters', () => {
    const a = uniqueIfname('vh6p');
    const b = uniqueIfname('vh6p');
    expect(a).not.toBe(b);
    expect(a.length).toBeLessThanOrEqual(15);
    expect(() => uniqueIfname('x'.repeat(15))).toThrow(/too long/);
  });
});

describe.skipIf(skip)('netns harness (real namespaces)', () => {
  afterAll(() => {
    cleanupAllNetns();
    expect(netnsList()).not.toMatch(new RegExp(`${PREFIX}${process.pid}-`));
  });

  it('creates uniquely named namespaces and runs argv inside them', async () => {
    const a = await createNetns(PREFIX);
    const b = await createNetns(PREFIX);
    expect(a.name).not.toBe(b.name);
    expect(a.name.startsWith(`${PREFIX}${process.pid}-`)).toBe(true);
    expect(netnsList()).toContain(a.name);
    // argv, no shell: a ; is just an argument
    const r = await a.exec(['echo', 'x;', 'y']);
    expect(r.stdout).toBe('x; y\n');
    const links = await a.exec(['ip', '-o', 'link', 'show']);
    expect(links.stdout).toMatch(/\blo\b/);
    expect(links.stdout.trim().split('\n')).toHaveLength(1);
    await expect(a.exec(['false'])).rejects.toThrow(/exit 1/);
    expect((await a.exec(['false'], { allowFail: true })).exitCode).toBe(1);
  });

  it('links namespaces with veth, bridges, addresses; DHCP from busybox udhcpd reaches the guest', async () => {
    const rootBefore = rootLinks();
    const host = await createNetns(PREFIX);
    const guest = await createNetns(PREFIX);
    await host.addBridge('br0', { cidr: '10.77.0.1/24', mac: '52:54:00:aa:00:01' });
    await link(host, 'vnet0', guest, 'eth0', { macB: '52:54:00:aa:00:02' });
    await host.addPort('br0', 'vnet0');
    expect(await guest.mac('eth0')).toBe('52:54:00:aa:00:02');
    expect(await host.mac('br0')).toBe('52:54:00:aa:00:01');

    const conf = join(host.dir, 'udhcpd.conf');
    writeFileSync(
      conf,
      [
        'start 10.77.0.100',
        'end 10.77.0.110',
        'interface br0',
        `lease_file ${join(host.dir, 'udhcpd.leases')}`,
        `pidfile ${join(host.dir, 'udhcpd.pid')}`,
        'option subnet 255.255.255.0',
        'option router 10.77.0.1',
        'option dns 10.77.0.1',
        'option lease 600',
        '',
      ].join('\n'),
    );
    const server = host.spawn(['busybox', 'udhcpd', '-f', conf]);
    await sleep(200);
    const lease = await guestDhcp(guest, 'eth0', { hostname: 'g1' });
    expect(lease.ip).toMatch(/^10\.77\.0\.1(0\d|10)$/);
    expect(lease.prefix).toBe(24);
    expect(lease.router).toBe('10.77.0.1');
    expect(lease.dns).toEqual(['10.77.0.1']);
    // the script applied the address and default route in the guest
    const addr = await guest.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    expect(addr.stdout).toContain(`${lease.ip}/24`);
    const route = await guest.exec(['ip', 'route', 'show', 'default']);
    expect(route.stdout).toContain('via 10.77.0.1');
    await guest.exec(['ping', '-c', '1', '-W', '2', '10.77.0.1']).catch(async () => {
      await guest.exec(['busybox', 'ping', '-c', '1', '-W', '2', '10.77.0.1']);
    });

    // a client that stays: renews on SIGUSR1, exits on stop()
    const client = await startGuestDhcp(guest, 'eth0');
    expect(client.lease.ip).toBe(lease.ip);
    expect((await client.renew()).ip).toBe(lease.ip);
    expect(client.events().map((e) => e.split(' ')[0])).toEqual(['deconfig', 'bound', 'renew']);
    await client.stop();

    // nothing appeared in the root namespace
    const rootAfter = rootLinks();
    for (const n of ['vnet0', 'br0']) {
      expect(rootBefore.includes(`: ${n}:`)).toBe(rootAfter.includes(`: ${n}:`));
    }
    expect(host.pids()).toContain(server.child.pid);
    host.cleanup();
    guest.cleanup();
    expect(await server.exited).toBe('SIGKILL');
  });

  it('cleanup kills daemonized processes found only by `ip netns pids`, deletes the namespace, twice is safe', async () => {
    const ns = await createNetns(PREFIX);
    const pidFile = join(ns.dir, 'bg.pid');
    // a process that daemonizes: the harness did not spawn the sleeper itself
    await ns.exec(['sh', '-c', `setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > ${pidFile}`]);
    const bg = Number(execFileSync('cat', [pidFile], { encoding: 'utf8' }).trim());
    expect(alive(bg)).toBe(true);
    expect(ns.pids()).toContain(bg);
    const tracked = ns.spawn(['sleep', '1000']);
    await sleep(50);
    ns.cleanup();
    expect(ns.isRemoved).toBe(true);
    expect(await tracked.exited).toBe('SIGKILL');
    // the sleeper is ours (child of the shell we ran, reparented): it is dead, at most a zombie
    await sleep(50);
    const state = existsSync(`/proc/${bg}/stat`)
      ? execFileSync('cat', [`/proc/${bg}/stat`], { encoding: 'utf8' })
      : '';
    expect(state === '' || / Z /.test(state)).toBe(true);
    expect(netnsList()).not.toContain(ns.name);
    expect(existsSync(ns.dir)).toBe(false);
    expect(() => ns.cleanup()).not.toThrow();
    expect(liveNetns()).not.toContain(ns);
  });

  it('the global registry cleans namespaces left by a failed test', async () => {
    const ns = await createNetns(PREFIX);
    expect(liveNetns()).toContain(ns);
    cleanupAllNetns();
    expect(netnsList()).not.toContain(ns.name);
    expect(liveNetns()).toEqual([]);
  });
});
