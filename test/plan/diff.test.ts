/**
 * diffPlans: the steps of a live update, for each case the engine's update handles. Golden: the exact
 * steps (kinds, link ops, sysctls, scripts) for two definitions of one network.
 */
import { describe, expect, it } from 'vitest';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import type { FirewallBackend, HostEntry } from '../../src/model/values.js';
import { diffPlans, type PlannedNetwork, type UpdateStep } from '../../src/plan/diff.js';
import { defaultPlanPaths, planNetwork } from '../../src/plan/index.js';

const base = {
  forward: "<forward mode='nat'/>",
  bridge: "<bridge name='virbr9' stp='on' delay='0'/>",
  mac: '52:54:00:1e:d8:35',
  mtu: '',
  dhcpHost: "<host mac='52:54:00:00:00:99' name='x' ip='10.9.0.99'/>",
  range: "<range start='10.9.0.2' end='10.9.0.254'/>",
  addr: "<ip address='10.9.0.1' netmask='255.255.255.0'>",
  route: '',
  dns: '',
};
type Parts = typeof base;

function xml(p: Partial<Parts> = {}): string {
  const x = { ...base, ...p };
  return `<network><name>n9</name><uuid>3a0c8ed5-88d1-495a-9e01-d1e6f6ea65cc</uuid>${x.forward}${x.bridge}
  <mac address='${x.mac}'/>${x.mtu}${x.dns}${x.addr}<dhcp>${x.range}${x.dhcpHost}</dhcp></ip>${x.route}</network>`;
}

function planned(
  p: Partial<Parts> = {},
  backend: FirewallBackend = 'nftables',
  extra: HostEntry[] = [],
): PlannedNetwork {
  const network = parseNetworkXml(xml(p), { fillDefaults: true }).network;
  const plan = planNetwork(network, {
    firewall: backend,
    paths: defaultPlanPaths('/run/virtnet/dnsmasq', 'n9'),
    extraHosts: extra,
  });
  return { network, plan };
}

const kinds = (steps: UpdateStep[]) => steps.map((s) => s.kind);

describe('diffPlans', () => {
  it('equal plans: no step', () => {
    expect(diffPlans(planned(), planned())).toEqual([]);
  });

  it('hosts only (a reservation of the definition, or a live one): SIGHUP with the new host files', () => {
    const next = planned({ dhcpHost: "<host mac='52:54:00:00:00:98' name='y' ip='10.9.0.98'/>" });
    expect(diffPlans(planned(), next)).toEqual([
      {
        kind: 'dnsmasq-reload',
        hostsfile: '52:54:00:00:00:98,10.9.0.98,y\n',
        addnhosts: next.plan.addnhosts,
      },
    ]);
    const live = planned({}, 'nftables', [{ mac: '52:54:00:00:00:77', ip: '10.9.0.77' }]);
    expect(diffPlans(planned(), live)).toEqual([
      {
        kind: 'dnsmasq-reload',
        hostsfile: '52:54:00:00:00:99,10.9.0.99,x\n52:54:00:00:00:77,10.9.0.77\n',
        addnhosts: live.plan.addnhosts,
      },
    ]);
  });

  it('dnsmasq config changed (DHCP range): restart with the new files and argv', () => {
    const next = planned({ range: "<range start='10.9.0.100' end='10.9.0.200'/>" });
    const steps = diffPlans(planned(), next);
    expect(steps).toEqual([
      {
        kind: 'dnsmasq-restart',
        conf: next.plan.dnsmasqConf,
        hostsfile: next.plan.hostsfile,
        addnhosts: next.plan.addnhosts,
        argv: next.plan.dnsmasqArgv,
      },
    ]);
    expect(next.plan.dnsmasqConf).toContain('dhcp-range=10.9.0.100,10.9.0.200,255.255.255.0\n');
  });

  it('firewall: nat → route swaps the nftables rules in one transaction; sysctls unchanged', () => {
    const next = planned({ forward: "<forward mode='route'/>" });
    const steps = diffPlans(planned(), next);
    expect(kinds(steps)).toEqual(['firewall']);
    const fw = steps.find((s) => s.kind === 'firewall');
    expect(fw).toEqual({ kind: 'firewall', apply: next.plan.firewall, atomic: true });
    if (next.plan.firewall.backend !== 'nftables') throw new Error('nft');
    expect(next.plan.firewall.nft.apply).not.toContain('masquerade');
  });

  it('firewall with iptables: the old rules removed, then the new applied', () => {
    const old = planned({}, 'iptables');
    const next = planned({ forward: "<forward mode='route'/>" }, 'iptables');
    const fw = diffPlans(old, next).find((s) => s.kind === 'firewall');
    expect(fw).toEqual({
      kind: 'firewall',
      remove: old.plan.firewall,
      apply: next.plan.firewall,
      atomic: false,
    });
  });

  it('nat → isolated: rules removed, forwarding released, no new rules', () => {
    const old = planned();
    const steps = diffPlans(old, planned({ forward: '' }));
    expect(steps.find((s) => s.kind === 'host-sysctls')).toEqual({ kind: 'host-sysctls', sysctls: [] });
    // isolated has rules of its own (no traffic in or out): they replace the NAT ones atomically;
    // dnsmasq's config loses the gateway option (dhcp-option=3, no-resolv): restart.
    expect(kinds(steps)).toEqual(['host-sysctls', 'firewall', 'dnsmasq-restart']);
    expect(steps[1]).toMatchObject({ kind: 'firewall', atomic: true });
    expect(steps[1]).not.toHaveProperty('remove');
  });

  it('routes and addresses: routes out first, then addresses out, addresses in, routes in', () => {
    const old = planned({ route: "<route address='10.50.0.0' prefix='16' gateway='10.9.0.2'/>" });
    const next = planned({
      addr: "<ip address='10.9.0.1' netmask='255.255.255.0'><dhcp><range start='10.9.0.2' end='10.9.0.254'/></dhcp></ip><ip family='ipv6' address='fd00:9::1' prefix='64'>",
      range: '',
      dhcpHost: '',
      route: "<route address='10.60.0.0' prefix='16' gateway='10.9.0.2'/>",
    });
    const links = diffPlans(old, next).find((s) => s.kind === 'links');
    expect(links).toEqual({
      kind: 'links',
      ops: [
        { kind: 'route-del', family: 'ipv4', dest: '10.50.0.0/16', via: '10.9.0.2', dev: 'virbr9' },
        { kind: 'addr-add', dev: 'virbr9', family: 'ipv6', address: 'fd00:9::1', prefix: 64, nodad: true },
        { kind: 'route-add', family: 'ipv4', dest: '10.60.0.0/16', via: '10.9.0.2', dev: 'virbr9' },
      ],
    });
    // IPv6 on the bridge now: its sysctls follow
    expect(diffPlans(old, next).find((s) => s.kind === 'bridge-sysctls')).toEqual({
      kind: 'bridge-sysctls',
      sysctls: [
        { key: 'net.ipv6.conf.virbr9.disable_ipv6', value: '0' },
        { key: 'net.ipv6.conf.virbr9.accept_ra', value: '0' },
        { key: 'net.ipv6.conf.virbr9.autoconf', value: '0' },
      ],
    });
  });

  it('STP and MTU: one links step, the bridge reconfigured in place', () => {
    const steps = diffPlans(
      planned(),
      planned({ bridge: "<bridge name='virbr9' stp='off' delay='0'/>", mtu: "<mtu size='9000'/>" }),
    );
    expect(steps).toEqual([
      {
        kind: 'links',
        ops: [
          { kind: 'bridge-set', name: 'virbr9', stp: false, forwardDelay: 0 },
          { kind: 'link-set', name: 'virbr9', mtu: 9000 },
        ],
      },
      // the MTU is also a DHCP option in dnsmasq's config: restart
      ...steps.slice(1),
    ]);
    expect(kinds(steps)).toEqual(['links', 'dnsmasq-restart']);
    expect(steps[1]).toMatchObject({ conf: expect.stringContaining('dhcp-option=option:mtu,9000\n') });
  });

  it('the bridge itself changes (name, MAC, host bridge): restart as a whole', () => {
    expect(diffPlans(planned(), planned({ bridge: "<bridge name='virbr8'/>" }))).toEqual([
      { kind: 'restart', why: 'bridge virbr9 → virbr8' },
    ]);
    expect(kinds(diffPlans(planned(), planned({ mac: '52:54:00:1e:d8:36' })))).toEqual(['restart']);
  });

  it('dnsmasq no longer needed / newly needed: stop / start', () => {
    const noDhcpNoDns = planned({ dns: "<dns enable='no'/>", range: '', dhcpHost: '' });
    expect(noDhcpNoDns.plan.dnsmasqConf).toBeNull();
    expect(kinds(diffPlans(planned(), noDhcpNoDns))).toContain('dnsmasq-stop');
    const back = diffPlans(noDhcpNoDns, planned());
    expect(back.find((s) => s.kind === 'dnsmasq-start')).toEqual({
      kind: 'dnsmasq-start',
      conf: planned().plan.dnsmasqConf,
      hostsfile: planned().plan.hostsfile,
      addnhosts: planned().plan.addnhosts,
      argv: planned().plan.dnsmasqArgv,
    });
  });
});
