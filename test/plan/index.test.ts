import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { renderAddnhosts, renderDnsmasqConf, renderHostsfile } from '../../src/plan/dnsmasq.js';
import { renderIptables } from '../../src/plan/firewall/iptables.js';
import { renderNftables } from '../../src/plan/firewall/nftables.js';
import { planFirewall } from '../../src/plan/firewall/rules.js';
import { defaultPlanPaths, planNetwork } from '../../src/plan/index.js';
import { planLinksDown, planLinksUp, renderIpBatch } from '../../src/plan/links.js';

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
</network>`;

const BRIDGED = `<network><name>host-bridge</name><uuid>4a0c8ed5-88d1-495a-9e01-d1e6f6ea65cc</uuid>
  <forward mode='bridge'/><bridge name='br0'/></network>`;

const paths = defaultPlanPaths('/run/virtnet/dnsmasq', 'default');

describe('planNetwork', () => {
  const net = parseNetworkXml(NAT, { fillDefaults: true }).network;

  it('has exactly the keys of everything a network needs', () => {
    const plan = planNetwork(net, { firewall: 'nftables', paths });
    expect(Object.keys(plan).sort()).toEqual([
      'addnhosts',
      'dnsmasqArgv',
      'dnsmasqConf',
      'firewall',
      'firewallRules',
      'hostsfile',
      'links',
      'paths',
    ]);
  });

  it('composes the dnsmasq, firewall and links planners unchanged', () => {
    const { conf: _c, ...dnsPaths } = paths;
    const nft = planNetwork(net, { firewall: 'nftables', paths });
    expect(nft.dnsmasqConf).toBe(renderDnsmasqConf(net, dnsPaths));
    expect(nft.hostsfile).toBe(renderHostsfile(net));
    expect(nft.addnhosts).toBe(renderAddnhosts(net));
    expect(nft.firewall).toEqual({ backend: 'nftables', nft: renderNftables(planFirewall(net)) });
    const up = planLinksUp(net);
    expect(nft.links).toEqual({
      ops: up.ops,
      batch: renderIpBatch(up.ops),
      teardown: renderIpBatch(planLinksDown(net)),
      sysctls: up.sysctls,
      bridgeSysctls: up.bridgeSysctls,
    });
    const ipt = planNetwork(net, { firewall: 'iptables', paths });
    expect(ipt.firewall).toEqual({ backend: 'iptables', iptables: renderIptables(planFirewall(net)) });
  });

  it('points dnsmasq at the given paths and carries the network content', () => {
    const plan = planNetwork(net, { firewall: 'nftables', paths });
    expect(plan.dnsmasqConf).toContain('dhcp-hostsfile=/run/virtnet/dnsmasq/default.hostsfile\n');
    expect(plan.dnsmasqConf).toContain('addn-hosts=/run/virtnet/dnsmasq/default.addnhosts\n');
    expect(plan.dnsmasqConf).toContain('interface=virbr0\n');
    expect(plan.hostsfile).toBe('52:54:00:00:00:99,192.168.122.99,x\n');
    expect(plan.addnhosts).toMatch(/^192\.168\.122\.7\tseven\b/);
    expect(plan.links.batch).toContain('link add name virbr0 address 52:54:00:1e:d8:35 type bridge');
    expect(plan.links.sysctls).toContainEqual({ key: 'net.ipv4.ip_forward', value: '1' });
    if (plan.firewall.backend !== 'nftables') throw new Error('expected nftables');
    expect(plan.firewall.nft.apply).toContain('masquerade');
  });

  it('a bridged network: no dnsmasq, no links, no firewall rules', () => {
    const br = parseNetworkXml(BRIDGED, { fillDefaults: true }).network;
    const plan = planNetwork(br, { firewall: 'iptables', paths: defaultPlanPaths('/run/x', 'host-bridge') });
    expect(plan.dnsmasqConf).toBeNull();
    expect(plan.links.ops).toEqual([]);
    if (plan.firewall.backend !== 'iptables') throw new Error('expected iptables');
    expect(plan.firewall.iptables.v4.apply).toBe('');
  });

  it('refuses unsafe paths with a ValidationError', () => {
    expect(() =>
      planNetwork(net, { firewall: 'nftables', paths: { ...paths, hostsfile: 'relative/x.hostsfile' } }),
    ).toThrow(ValidationError);
    expect(() =>
      planNetwork(net, { firewall: 'nftables', paths: { ...paths, addnhosts: '/run/a\ndhcp-range=1' } }),
    ).toThrow(ValidationError);
  });
});
