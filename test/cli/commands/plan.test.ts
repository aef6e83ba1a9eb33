import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { parseNetworkXml } from '../../../src/model/parse-network.js';
import { defaultPlanPaths, planNetwork } from '../../../src/plan/index.js';
import { captureIo } from '../io.js';

const NAT = `<network>
  <name>default</name>
  <uuid>3a0c8ed5-88d1-495a-9e01-d1e6f6ea65cc</uuid>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:1e:d8:35'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
      <host mac='52:54:00:00:00:99' name='x' ip='192.168.122.99'/>
    </dhcp>
  </ip>
</network>`;

async function run(argv: string[], files: Record<string, string> = { 'n.xml': NAT }) {
  const io = captureIo(files);
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

describe('virtnetctl plan', () => {
  it('--json: the plan object itself, with exactly its keys, equal to planNetwork', async () => {
    for (const firewall of ['nftables', 'iptables'] as const) {
      const r = await run(['plan', 'n.xml', '--json', '--firewall', firewall]);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toBe('');
      const obj = JSON.parse(r.out) as Record<string, unknown>;
      expect(Object.keys(obj)).toEqual([
        'dnsmasqConf',
        'hostsfile',
        'addnhosts',
        'dnsmasqArgv',
        'paths',
        'firewall',
        'firewallRules',
        'links',
      ]);
      const net = parseNetworkXml(NAT, { fillDefaults: true }).network;
      const expected = planNetwork(net, {
        firewall,
        paths: defaultPlanPaths('/run/virtnet/dnsmasq', 'default'),
      });
      expect(obj).toEqual(JSON.parse(JSON.stringify(expected)));
      expect((obj.firewall as { backend: string }).backend).toBe(firewall);
    }
  });

  it('text: every part under its own heading, files under --run-dir', async () => {
    const r = await run(['plan', 'n.xml', '--run-dir', '/tmp/vn']);
    expect(r.code, r.err).toBe(0);
    for (const h of [
      '### dnsmasq config → /tmp/vn/dnsmasq/default.conf',
      '### dhcp hostsfile → /tmp/vn/dnsmasq/default.hostsfile',
      '### addn-hosts → /tmp/vn/dnsmasq/default.addnhosts',
      '### firewall (nftables) — apply: nft -f -',
      '### firewall (nftables) — remove: nft -f -',
      '### links — bring up: ip -batch -',
      '### links — tear down: ip -batch -',
      '### sysctls',
    ])
      expect(r.out).toContain(`${h}\n`);
    expect(r.out).toContain('dhcp-hostsfile=/tmp/vn/dnsmasq/default.hostsfile\n');
    expect(r.out).toContain('52:54:00:00:00:99,192.168.122.99,x\n');
    expect(r.out).toContain('net.ipv4.ip_forward = 1\n');
  });

  it('iptables text shows both families, apply and remove', async () => {
    const r = await run(['plan', 'n.xml', '--firewall=iptables']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('### firewall (iptables) — apply IPv4: iptables-restore --noflush\n*filter\n');
    expect(r.out).toContain('### firewall (iptables) — remove IPv6: ip6tables-restore --noflush\n');
  });

  it('an invalid network: exit 1, one line per problem', async () => {
    const r = await run(['plan', 'n.xml'], { 'n.xml': NAT.replace("name='virbr0'", "name='vir br0'") });
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^virtnetctl: network\/bridge@name: .+ \(value "vir br0"\)\n$/);
  });

  it('usage errors exit 2; a missing file exits 3', async () => {
    expect((await run(['plan', 'n.xml', '--firewall', 'pf'])).code).toBe(2);
    expect((await run(['plan'])).code).toBe(2);
    expect((await run(['plan', 'missing.xml'])).code).toBe(3);
  });
});
