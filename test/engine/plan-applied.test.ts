/**
 * `virtnetctl plan` prints what the engine applies: the REAL LinuxEngine on the dry-run runner starts
 * a fixture, and every command input, argv, file text and sysctl it used is compared with the plan
 * object `virtnetctl plan --json` prints for the same XML and run directory.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { LinuxEngine } from '../../src/engine/engine.js';
import { DryRunRunner } from '../../src/exec/runner.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import type { NetworkPlan } from '../../src/plan/index.js';
import { captureIo } from '../cli/io.js';
import { FakeDnsmasq, FakeHost, FakeSysctl } from '../helpers/engine-fakes.js';

const NAT = `<network>
  <name>default</name>
  <uuid>3a0c8ed5-88d1-495a-9e01-d1e6f6ea65cc</uuid>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:1e:d8:35'/>
  <dns><host ip='192.168.122.7'><hostname>seven</hostname></host></dns>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
      <host mac='52:54:00:00:00:99' name='x' ip='192.168.122.99'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='fd00:1::1' prefix='64'/>
  <route address='10.9.0.0' prefix='16' gateway='192.168.122.2'/>
</network>`;

let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = '';
});

async function printedPlan(runDir: string): Promise<NetworkPlan> {
  const io = captureIo({ 'n.xml': NAT });
  const code = await main(['plan', 'n.xml', '--json', '--firewall', 'nftables', '--run-dir', runDir], io);
  expect(code, io.err).toBe(0);
  return JSON.parse(io.out) as NetworkPlan;
}

describe('the engine applies what `virtnetctl plan` prints', () => {
  it('links, sysctls, firewall, dnsmasq files and argv of a NAT network', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vn-plan-applied-'));
    const runner = new DryRunRunner();
    const dnsmasq = new FakeDnsmasq();
    runner.on(['dnsmasq'], (req) => {
      dnsmasq.started(req.argv);
      return {};
    });
    const sysctl = new FakeSysctl();
    const writes: string[] = [];
    const write = sysctl.write.bind(sysctl);
    sysctl.write = async (k, v) => {
      writes.push(`${k}=${v}`);
      await write(k, v);
    };
    const engine = await LinuxEngine.create({
      runDir: dir,
      runner,
      probe: new FakeHost(),
      sysctl,
      dnsmasqProbe: dnsmasq,
      firewall: 'nftables',
      supervisor: { pollMs: 10_000 },
    });
    const net = parseNetworkXml(NAT, { fillDefaults: true }).network;
    await engine.start(net);
    const plan = await printedPlan(dir);
    if (plan.firewall.backend !== 'nftables') throw new Error('expected nftables');

    const ipBatches = runner.calls.filter((c) => c.argv.join(' ') === 'ip -batch -').map((c) => c.input);
    expect(ipBatches).toEqual([plan.links.batch]);
    const nft = runner.calls.filter((c) => c.argv.join(' ') === 'nft -f -').map((c) => c.input);
    expect(nft).toEqual([plan.firewall.nft.create ?? plan.firewall.nft.apply]);
    const started = runner.calls.filter((c) => c.argv[0] === 'dnsmasq').map((c) => c.argv);
    expect(started).toEqual([plan.dnsmasqArgv]);
    expect(writes.sort()).toEqual(
      [...plan.links.bridgeSysctls, ...plan.links.sysctls].map((s) => `${s.key}=${s.value}`).sort(),
    );
    expect(await readFile(plan.paths.conf, 'utf8')).toBe(plan.dnsmasqConf);
    expect(await readFile(plan.paths.hostsfile, 'utf8')).toBe(plan.hostsfile);
    expect(await readFile(plan.paths.addnhosts, 'utf8')).toBe(plan.addnhosts);
    // Nothing else ran but the backend probe: every change came from the plan.
    expect(runner.commandLines()).toEqual([
      'nft list tables',
      'ip -batch -',
      'nft -f -',
      plan.dnsmasqArgv!.join(' '),
    ]);
    await engine.stop(net.name);
    const down = runner.calls.filter((c) => c.argv.join(' ') === 'ip -batch -').map((c) => c.input);
    expect(down.at(-1)).toBe(plan.links.teardown);
    const nftDown = runner.calls.filter((c) => c.argv.join(' ') === 'nft -f -').map((c) => c.input);
    expect(nftDown.at(-1)).toBe(plan.firewall.nft.remove);
    await engine.close();
  });
});
