/**
 * `doctor` on a real host (the test's namespaces): the engine runs in the "host" namespace with a NAT
 * network and a guest. Each check is provoked for real and its answer is acted on: a foreign nft
 * table dropping forwarded traffic by policy (the guest loses the uplink; running the printed fix
 * gives it back), Docker's FORWARD DROP (fixed by the layer), ip_forward off (the printed sysctl
 * fixes it), an overlapping address on another interface, another process on UDP 67.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Finding } from '../../src/firewall/doctor.js';
import type { Network } from '../../src/model/network.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';
import {
  EngineDriver,
  peerEcho,
  runDirFor,
  settle,
  tcpProbe,
  testNetwork,
  waitFor,
} from './engine-harness.js';

const skip = missingPrereqs(['ip', 'nft', 'iptables-nft-restore', 'dnsmasq', 'busybox', 'node', 'sh']);

const MAC = '52:54:00:aa:00:01';
const NET = 'vd12';

function network(): Network {
  return testNetwork({
    name: NET,
    bridge: { name: 'vdbr0', stp: false, delay: 0 },
    ips: [
      {
        family: 'ipv4',
        address: '10.86.0.1',
        prefix: 24,
        dhcp: { ranges: [], hosts: [{ mac: MAC, ip: '10.86.0.50', name: 'resv1' }] },
      },
    ],
  });
}

describe.skipIf(skip)('doctor on a real host (nftables backend)', () => {
  let host: Netns;
  let up: Netns;
  let g: Netns;
  let eng: EngineDriver;

  const doctor = () => eng.call<Finding[]>('doctor', NET);
  const problems = async () => (await doctor()).filter((f) => f.status === 'problem');
  /** Run a printed fix in the host namespace, as an admin would paste it into a shell. */
  const runFix = (fix: string) => host.exec(['sh', '-c', fix]);

  beforeAll(async () => {
    host = await createNetns('vd12-h');
    up = await createNetns('vd12-u');
    g = await createNetns('vd12-g');
    await link(host, 'wan0', up, 'up0');
    await host.addAddr('wan0', '192.0.2.2/24');
    await up.addAddr('up0', '192.0.2.1/24');
    await host.addRoute('default', { via: '192.0.2.1' });
    await link(host, 'vnet0', g, 'eth0', { macB: MAC });
    await settle(host);
    eng = EngineDriver.spawn(host);
    await eng.call('create', { runDir: await runDirFor(host), firewall: 'nftables', coexist: true });
    await eng.call('start', network());
    await eng.call('attachPort', NET, 'vnet0');
    expect((await guestDhcp(g, 'eth0')).ip).toBe('10.86.0.50');
    const srv = peerEcho(up, 8081);
    await waitFor(() => srv.output().stdout.includes('listening'), 5000, 'uplink server');
  });
  afterAll(async () => {
    await eng?.end().catch(() => {});
    cleanupAllNetns();
  });

  it('a clean host: no problem', async () => {
    const f = await doctor();
    expect(f.filter((x) => x.status !== 'ok')).toEqual([]);
    expect(f.find((x) => x.check === 'ip_forward')!.detail).toBe('net.ipv4.ip_forward is 1');
  });

  it('a foreign nft table with forward policy drop: reported; its printed fix gives the guest the uplink back', async () => {
    await host.exec(['nft', '-f', '-'], {
      input:
        'table inet admin {\n\tchain gate {\n\t\ttype filter hook forward priority 0; policy drop;\n\t}\n}\n',
    });
    await waitFor(async () => (await tcpProbe(g, '192.0.2.1', 8081)) === undefined, 5000, 'guest cut off');
    const [p] = (await problems()).filter((f) => f.check === 'nftables');
    expect(p!.detail).toMatch(/table inet admin, chain gate \(hook forward\) has policy drop/);
    await runFix(p!.fix);
    expect(await tcpProbe(g, '192.0.2.1', 8081)).toBe('192.0.2.2');
    // Still reported (the drop policy is the admin's and stays), though the guest is let through now.
    expect((await problems()).some((f) => f.check === 'nftables')).toBe(true);
    await host.exec(['nft', 'delete', 'table', 'inet', 'admin']);
    expect((await problems()).filter((f) => f.check === 'nftables')).toEqual([]);
  });

  it("Docker's FORWARD DROP: fixed by virtnet's layer", async () => {
    await host.exec(['iptables-nft-restore', '--noflush', '-w'], {
      input: readFileSync(join(projectRoot, 'test/firewall/fixtures/docker28.rules'), 'utf8'),
    });
    await waitFor(
      async () => (await doctor()).some((f) => f.check === 'iptables' && f.status === 'fixed'),
      5000,
      'layer in place',
    );
    const f = (await doctor()).find((x) => x.check === 'iptables')!;
    expect(f.detail).toMatch(
      /iptables-nft: FORWARD \(policy DROP\) can drop .* virtnet's accepts are at the head/,
    );
  });

  it('ip_forward off: reported, the printed sysctl fixes it', async () => {
    await host.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    const [p] = (await problems()).filter((f) => f.check === 'ip_forward');
    expect(p!.fix).toBe('sysctl -w net.ipv4.ip_forward=1');
    expect(await tcpProbe(g, '192.0.2.1', 8081)).toBeUndefined();
    await runFix(p!.fix);
    expect((await problems()).filter((f) => f.check === 'ip_forward')).toEqual([]);
    expect(await tcpProbe(g, '192.0.2.1', 8081)).toBe('192.0.2.2');
  });

  it('an overlapping address on another interface, another process on UDP 67', async () => {
    await host.exec(['ip', 'addr', 'add', '10.86.0.77/24', 'dev', 'wan0']);
    const other = host.spawn([
      'node',
      '-e',
      "const s=require('dgram').createSocket({type:'udp4',reuseAddr:true});s.bind(67,'127.0.0.1',()=>console.log('bound'))",
    ]);
    await waitFor(() => other.output().stdout.includes('bound'), 5000, 'udp 67 socket');
    const f = await doctor();
    const addr = f.find((x) => x.check === 'addresses')!;
    expect(addr).toMatchObject({ status: 'problem', fix: 'ip addr del 10.86.0.77/24 dev wan0' });
    const dhcp = f.find((x) => x.check === 'dhcp')!;
    expect(dhcp.status).toBe('warning');
    expect(dhcp.detail).toMatch(/node \(pid \d+\)/);
    expect(dhcp.detail).not.toMatch(/dnsmasq/);
    await runFix(addr.fix);
    other.kill();
    await waitFor(
      async () => (await doctor()).find((x) => x.check === 'dhcp')!.status === 'ok',
      5000,
      'udp 67 socket gone',
    );
    expect((await problems()).length).toBe(0);
    // The network's own dnsmasq serves DHCP and is not reported.
    expect(
      execFileSync('ip', ['netns', 'exec', host.name, 'cat', '/proc/net/udp'], { encoding: 'utf8' }),
    ).toMatch(/:0043 /);
  });
});
