/**
 * The engine against a dry-run runner, a fake host and fake sysctls: the order of steps, the
 * rollback when a step fails, and conflicts refused before anything runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LinuxEngine } from '../../src/engine/engine.js';
import type { HostProbe, HostRoute } from '../../src/engine/host.js';
import type { SysctlIo } from '../../src/engine/sysctl.js';
import { DryRunRunner } from '../../src/exec/runner.js';
import type { Network } from '../../src/model/network.js';
import type { NicState } from '../../src/plan/links.js';

class FakeHost implements HostProbe {
  links_ = new Set(['lo', 'eth0']);
  bridges = new Set<string>();
  routes_: HostRoute[] = [{ family: 'ipv4', dest: '192.0.2.0', prefix: 24, dev: 'eth0' }];
  async linkExists(n: string) {
    return this.links_.has(n);
  }
  async isBridge(n: string) {
    return this.bridges.has(n);
  }
  async masterOf() {
    return undefined;
  }
  async links() {
    return [...this.links_];
  }
  async routes() {
    return this.routes_;
  }
  raDevs: string[] = [];
  async raDefaultRouteDevs() {
    return this.raDevs;
  }
  async nicState(name: string): Promise<NicState> {
    return { name, mac: '02:00:00:00:00:01', mtu: 1500, addrs: [], routes: [] };
  }
}

class FakeSysctl implements SysctlIo {
  values = new Map<string, string>([
    ['net.ipv4.ip_forward', '0'],
    ['net.ipv6.conf.all.forwarding', '0'],
  ]);
  writes: string[] = [];
  async read(k: string) {
    return this.values.get(k) ?? '0';
  }
  async write(k: string, v: string) {
    this.writes.push(`${k}=${v}`);
    this.values.set(k, v);
  }
}

function net(over: Partial<Network> = {}): Network {
  return {
    name: 'n1',
    uuid: '00000000-0000-4000-8000-000000000001',
    forward: { mode: 'route', interfaces: [] },
    bridge: { name: 'virbr5', stp: false, delay: 0 },
    mac: '52:54:00:00:00:05',
    ips: [{ family: 'ipv4', address: '10.5.0.1', prefix: 24 }],
    routes: [],
    dns: { enable: false, forwarders: [], txts: [], srvs: [], hosts: [] },
    dnsmasqOptions: [],
    ignored: [],
    ...over,
  };
}

describe('LinuxEngine (dry run)', () => {
  let dir: string;
  let runner: DryRunRunner;
  let host: FakeHost;
  let sys: FakeSysctl;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vh5-engine-'));
    runner = new DryRunRunner();
    host = new FakeHost();
    sys = new FakeSysctl();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const make = () =>
    LinuxEngine.create({ runDir: dir, runner, probe: host, sysctl: sys, firewall: 'nftables' });

  it('starts in order: links in one batch, sysctls, firewall in one transaction; stop undoes it all', async () => {
    const e = await make();
    await e.start(net());
    expect(runner.commandLines()).toEqual(['nft list tables', 'ip -batch -', 'nft -f -']);
    expect(runner.calls[1]!.input).toContain('link add name virbr5 address 52:54:00:00:00:05 type bridge');
    expect(sys.values.get('net.ipv4.ip_forward')).toBe('1');
    expect(e.isActive('n1')).toBe(true);
    host.links_.add('virbr5');
    await e.stop('n1');
    // Rules and links go side by side (either order).
    const stopCalls = runner.calls.slice(3);
    expect(stopCalls.map((c) => c.argv.join(' ')).sort()).toEqual(['ip -batch -', 'nft -f -']);
    expect(stopCalls.find((c) => c.argv[0] === 'nft')!.input).toMatch(/^delete table ip virtnet_/m);
    expect(stopCalls.find((c) => c.argv[0] === 'ip')!.input).toBe('link del dev virbr5\n');
    // ip_forward back to what it was.
    expect(sys.values.get('net.ipv4.ip_forward')).toBe('0');
    expect(e.isActive('n1')).toBe(false);
  });

  it('rolls back in reverse when the firewall fails, and names the step and stderr', async () => {
    runner.on(['nft', '-f', '-'], (req) =>
      req.input?.startsWith('delete')
        ? {}
        : { exitCode: 1, stderr: 'Error: Could not process rule: No such file' },
    );
    const e = await make();
    host.links_.add('virbr5'); // the batch "created" it
    host.links_.delete('virbr5');
    const err = await e.start(net()).catch((x: Error) => x);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/firewall: add nftables rules of network n1.*No such file/);
    // After the failing nft: firewall removal, sysctls restored, bridge deleted.
    const lines = runner.commandLines();
    expect(lines[0]).toBe('nft list tables');
    expect(lines[1]).toBe('ip -batch -');
    expect(lines[2]).toBe('nft -f -');
    expect(sys.values.get('net.ipv4.ip_forward')).toBe('0');
    expect(e.isActive('n1')).toBe(false);
    expect(e.list()).toEqual([]);
  });

  it('deletes the bridge on rollback when it exists', async () => {
    runner.on(['nft', '-f', '-'], { exitCode: 1, stderr: 'boom' });
    const e = await make();
    // The fake host sees the bridge as soon as the batch ran.
    runner.respond((req) => {
      if (req.argv[0] === 'ip' && req.input?.startsWith('link add')) host.links_.add('virbr5');
      return undefined;
    });
    await expect(e.start(net())).rejects.toThrow(/boom/);
    const last = runner.calls.at(-1)!;
    expect(last.argv).toEqual(['ip', '-batch', '-']);
    expect(last.input).toBe('link del dev virbr5\n');
  });

  it('refuses conflicts before running anything', async () => {
    const e = await make();
    const before = runner.calls.length;
    host.links_.add('virbr5');
    await expect(e.start(net())).rejects.toThrow(/virbr5 already exists/);
    host.links_.delete('virbr5');
    await expect(
      e.start(net({ ips: [{ family: 'ipv4', address: '192.0.2.129', prefix: 25 }] })),
    ).rejects.toThrow(/overlaps the route to 192\.0\.2\.0\/24 on eth0/);
    await expect(e.start(net({ forward: { mode: 'nat', dev: 'wan9', interfaces: [] } }))).rejects.toThrow(
      /forward dev wan9 does not exist/,
    );
    await expect(
      e.start(net({ forward: { mode: 'bridge', interfaces: [] }, bridge: { name: 'br7' }, ips: [] })),
    ).rejects.toThrow(/host bridge br7 does not exist/);
    expect(runner.calls.length).toBe(before);
    await e.start(net());
    await expect(
      e.start(
        net({
          name: 'n2',
          bridge: { name: 'virbr6' },
          ips: [{ family: 'ipv4', address: '10.5.0.128', prefix: 25 }],
        }),
      ),
    ).rejects.toThrow(/overlaps network n1/);
    await expect(e.start(net())).rejects.toThrow(/already active/);
  });

  it('keeps ip_forward while another network needs it', async () => {
    const e = await make();
    await e.start(net());
    await e.start(
      net({
        name: 'n2',
        bridge: { name: 'virbr6' },
        ips: [{ family: 'ipv4', address: '10.6.0.1', prefix: 24 }],
      }),
    );
    host.links_.add('virbr5').add('virbr6');
    await e.stop('n1');
    expect(sys.values.get('net.ipv4.ip_forward')).toBe('1');
    await e.stop('n2');
    expect(sys.values.get('net.ipv4.ip_forward')).toBe('0');
  });

  it('a new engine adopts from the state files and re-applies the rules atomically', async () => {
    const e1 = await make();
    await e1.start(net());
    host.links_.add('virbr5');
    await e1.close();
    const r2 = new DryRunRunner();
    const e2 = await LinuxEngine.create({
      runDir: dir,
      runner: r2,
      probe: host,
      sysctl: sys,
      firewall: 'nftables',
    });
    await e2.adopt([]);
    expect(e2.isActive('n1')).toBe(true);
    // presence check (nft -c), then one transaction remove + apply.
    expect(r2.commandLines()).toEqual(['nft list tables', 'nft -c -f -', 'nft -f -']);
    expect(r2.calls[2]!.input).toMatch(/delete table ip virtnet_[\s\S]*table ip virtnet_/);
  });

  it('networks started side by side: conflicts still caught', async () => {
    const e = await make();
    const a = net();
    const b = net({
      name: 'n2',
      bridge: { name: 'virbr6' },
      ips: [{ family: 'ipv4', address: '10.6.0.1', prefix: 24 }],
    });
    const clash = net({
      name: 'n3',
      bridge: { name: 'virbr7' },
      ips: [{ family: 'ipv4', address: '10.6.0.129', prefix: 25 }],
    });
    const results = await Promise.allSettled([e.start(a), e.start(b), e.start(clash)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/overlaps network n2/);
    expect(
      e
        .list()
        .map((n) => n.name)
        .sort(),
    ).toEqual(['n1', 'n2']);
  });

  it('a start cut short (state still "starting") is undone by the next engine', async () => {
    const { StateStore } = await import('../../src/engine/state.js');
    const store = new StateStore(dir);
    await store.init();
    const n = net();
    await store.save({
      version: 1,
      network: n,
      bridge: 'virbr5',
      createdBridge: true,
      macTap: false,
      firewall: 'none',
      dnsmasq: false,
      ports: [],
      extraHosts: [],
      startedAt: new Date().toISOString(),
      phase: 'starting',
    });
    host.links_.add('virbr5');
    const e = await make();
    await e.adopt([]);
    expect(e.isActive('n1')).toBe(false);
    expect(runner.commandLines()).toEqual(['nft list tables', 'ip -batch -']);
    expect(runner.calls[1]!.input).toContain('link del dev virbr5');
    expect(await store.loadAll()).toEqual([]);
  });

  it('enslave: a failed move puts the NIC back (address, default route) before reporting', async () => {
    host.nicState = async (name: string): Promise<NicState> => ({
      name,
      mac: '02:00:00:00:00:01',
      mtu: 1500,
      addrs: [{ family: 'ipv4' as const, address: '192.0.2.10', prefix: 24, broadcast: '192.0.2.255' }],
      routes: [{ family: 'ipv4' as const, dest: 'default', via: '192.0.2.1' }],
    });
    runner.on(['ip', '-batch', '-'], (req) =>
      req.input?.includes('master br0')
        ? { exitCode: 2, stderr: 'RTNETLINK answers: Device or resource busy\nCommand failed -:4' }
        : {},
    );
    const e = await make();
    const n = net({
      name: 'lan',
      forward: { mode: 'bridge', interfaces: [] },
      bridge: { name: 'br0', enslave: 'eth0' },
      ips: [],
    });
    delete n.mac;
    await expect(e.start(n)).rejects.toThrow(/links: enslave eth0 to br0.*Device or resource busy/);
    const release = runner.calls.find((c) => c.argv.join(' ') === 'ip -force -batch -');
    expect(release?.input).toBe(
      [
        'addr del 192.0.2.10/24 dev br0',
        'link set dev eth0 nomaster',
        'link set dev br0 down',
        'link del dev br0',
        'addr add 192.0.2.10/24 broadcast 192.0.2.255 dev eth0',
        'link set dev eth0 up',
        'route add 0.0.0.0/0 via 192.0.2.1 dev eth0',
        '',
      ].join('\n'),
    );
    expect(e.isActive('lan')).toBe(false);
  });

  it('refuses IPv6 forwarding that would drop an RA-learned default route (accept_ra != 2)', async () => {
    host.raDevs = ['eth0'];
    sys.values.set('net.ipv6.conf.eth0.accept_ra', '1');
    const e = await make();
    const v6 = net({ ips: [{ family: 'ipv6', address: 'fd00:5::1', prefix: 64 }] });
    await expect(e.start(v6)).rejects.toThrow(
      /eth0's default route learned from router advertisements.*accept_ra=2/,
    );
    expect(runner.commandLines()).toEqual(['nft list tables']);
    sys.values.set('net.ipv6.conf.eth0.accept_ra', '2');
    await e.start(v6);
    expect(sys.values.get('net.ipv6.conf.all.forwarding')).toBe('1');
  });
});
