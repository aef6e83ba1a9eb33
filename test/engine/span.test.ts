/**
 * The engine's span unit against a dry-run runner and a fake host: what a member runs, the order of
 * steps, the rollback when the VXLAN part fails, and what is refused before anything changes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LinuxEngine } from '../../src/engine/engine.js';
import { DryRunRunner } from '../../src/exec/runner.js';
import type { Network } from '../../src/model/network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { FakeHost, FakeSysctl } from '../helpers/engine-fakes.js';

const xml = (mode: string, name = 'lab', vni = 10100, br = 'vsp0') =>
  `<network xmlns:virtnet='https://virtnet.org/xmlns/network/1'><name>${name}</name><forward mode='nat'/><bridge name='${br}' stp='off' delay='0'/><mac address='52:54:00:5a:10:01'/><ip address='10.88.${vni % 200}.1' prefix='24'><dhcp><range start='10.88.${vni % 200}.100' end='10.88.${vni % 200}.200'/></dhcp></ip><virtnet:span mode='${mode}' vni='${vni}' gateway='192.0.2.11'><virtnet:peer address='192.0.2.12'/><virtnet:peer address='192.0.2.13'/></virtnet:span></network>`;

const spanNet = (mode = 'vxlan', name?: string, vni?: number, br?: string): Network =>
  parseNetworkXml(xml(mode, name, vni, br), { fillDefaults: true }).network;

describe('LinuxEngine with a spanning network (dry run)', () => {
  let dir: string;
  let runner: DryRunRunner;
  let host: FakeHost;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vsp-engine-'));
    runner = new DryRunRunner();
    host = new FakeHost();
    // This host is 192.0.2.12: a member.
    runner.on(['ip', '-j', 'addr', 'show'], {
      stdout: JSON.stringify([{ ifname: 'eth0', addr_info: [{ local: '192.0.2.12', prefixlen: 24 }] }]),
    });
    runner.respond((req) => {
      const m = /^link add (\S+) type vxlan/.exec(req.input ?? '');
      if (m) host.links_.add(m[1]!);
      if (req.input?.startsWith('link add name vsp0')) host.links_.add('vsp0');
      return undefined;
    });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const make = (extra = {}) =>
    LinuxEngine.create({
      runDir: dir,
      runner,
      probe: host,
      sysctl: new FakeSysctl(),
      firewall: 'nftables',
      ...extra,
    });

  it('a member: bare bridge, VXLAN port, flood list; no dnsmasq, no address; stop removes the port too', async () => {
    const e = await make();
    const info = await e.start(spanNet());
    expect(info.span).toMatchObject({ role: 'member', local: '192.0.2.12', port: 'vx10100' });
    expect(info.dnsmasqPid).toBeUndefined();
    const bridge = runner.calls.find((c) => c.input?.startsWith('link add name vsp0'))!;
    expect(bridge.input).not.toContain('addr add');
    expect(bridge.input).not.toContain('52:54:00:5a:10:01');
    const port = runner.calls.find((c) => c.input?.startsWith('link add vx10100'))!;
    expect(port.input).toBe(
      'link add vx10100 type vxlan id 10100 local 192.0.2.12 dstport 4789\nlink set dev vx10100 addrgenmode none\nlink set dev vx10100 master vsp0 up\n',
    );
    expect(runner.calls.find((c) => c.argv[0] === 'bridge')!.input).toBe(
      'fdb append 00:00:00:00:00:00 dev vx10100 dst 192.0.2.11\nfdb append 00:00:00:00:00:00 dev vx10100 dst 192.0.2.13\n',
    );
    expect(runner.calls.some((c) => c.argv[0] === 'dnsmasq')).toBe(false);
    expect(runner.calls.find((c) => c.argv[0] === 'nft' && c.argv[1] === '-f')!.input).not.toMatch(
      /masquerade/,
    );
    const n = runner.calls.length;
    await e.stop('lab');
    const stops = runner.calls.slice(n).map((c) => c.input ?? '');
    expect(stops).toContain('link del dev vx10100\n');
    expect(stops).toContain('link del dev vsp0\n');
  });

  it('a failed flood list takes back the port and the bridge, and names the step', async () => {
    runner.on(['bridge', '-batch', '-'], { exitCode: 1, stderr: 'RTNETLINK answers: Invalid argument' });
    const e = await make();
    const err = await e.start(spanNet()).catch((x: Error) => x);
    expect((err as Error).message).toMatch(/span: flood list of vx10100.*Invalid argument/s);
    const inputs = runner.calls.map((c) => c.input ?? '');
    expect(inputs).toContain('link del dev vx10100\n');
    expect(inputs.some((i) => i.includes('link del dev vsp0'))).toBe(true);
    expect(e.list()).toEqual([]);
  });

  it('refused before anything changes: no local address of the span, a VNI or port in use, evpn without FRR', async () => {
    const e = await make();
    const noRole = new DryRunRunner().on(['ip', '-j', 'addr', 'show'], { stdout: '[]' });
    const e2 = await LinuxEngine.create({
      runDir: join(dir, 'b'),
      runner: noRole,
      probe: host,
      sysctl: new FakeSysctl(),
      firewall: 'nftables',
    });
    await expect(e2.start(spanNet())).rejects.toThrow(
      "span: this host's role: network lab: none of the span's addresses (gateway 192.0.2.11, peers 192.0.2.12, 192.0.2.13) is an address of this host",
    );
    expect(noRole.commandLines()).toEqual(['nft list tables', 'ip -j addr show']);

    await e.start(spanNet());
    await expect(e.start(spanNet('vxlan', 'lab2', 10100, 'vsp1'))).rejects.toThrow(
      "network lab2: an interface named vx10100 (the span's VXLAN port) already exists",
    );
    // Also without the port on the host (e.g. a start of the same VNI still under way): refused by VNI.
    host.links_.delete('vx10100');
    await expect(e.start(spanNet('vxlan', 'lab2', 10100, 'vsp1'))).rejects.toThrow(
      'network lab2: VXLAN VNI 10100 is already used by network lab',
    );
    host.links_.add('vx10200');
    await expect(e.start(spanNet('vxlan', 'lab3', 10200, 'vsp2'))).rejects.toThrow(
      "an interface named vx10200 (the span's VXLAN port) already exists",
    );

    const n = runner.calls.length;
    runner.on(['vtysh'], { exitCode: 1, stderr: 'Exiting: failed to connect to any daemons.' });
    await expect(e.start(spanNet('evpn', 'lab4', 10300, 'vsp3'))).rejects.toThrow(
      "network lab4: span mode 'evpn' needs FRR (zebra + bgpd) with BGP EVPN 'advertise-all-vni' on this host: vtysh failed: Exiting: failed to connect to any daemons.; 'virtnetctl plan FILE.xml' prints the configuration",
    );
    expect(runner.commandLines().slice(n)).toEqual(['vtysh -c show bgp l2vpn evpn vni json']);
  });

  it('evpn with FRR ready: a port without learning and no static flood list', async () => {
    runner.on(['vtysh'], { stdout: '{"advertiseAllVnis":"Enabled","numVnis":0}' });
    const e = await make();
    await e.start(spanNet('evpn'));
    const port = runner.calls.find((c) => c.input?.startsWith('link add vx10100'))!;
    expect(port.input).toContain(' nolearning\n');
    expect(port.input).toContain('link set dev vx10100 type bridge_slave learning off\n');
    expect(runner.calls.some((c) => c.argv[0] === 'bridge')).toBe(false);
  });
});
