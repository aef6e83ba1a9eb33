import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.js';
import {
  type PortForwardInput,
  planPortForwards,
  renderPortForwardsIptables,
  renderPortForwardsNftables,
} from '../../../src/plan/firewall/portforward.js';
import { iptablesPortForwardStem, nftPortForwardTable } from '../../../src/plan/firewall/safe.js';

const input: PortForwardInput = {
  network: 'default',
  bridge: 'virbr0',
  domain: 'web1',
  subnets: ['192.168.122.1/24', '2001:db8:ca2:2::1/64'],
  forwards: [
    { proto: 'tcp', hostPort: 8080, guestIp: '192.168.122.10', guestPort: 80, family: 'ipv4' },
    {
      proto: 'udp',
      hostPort: 5353,
      guestIp: '192.168.122.10',
      guestPort: 53,
      family: 'ipv4',
      hostAddress: '203.0.113.5',
    },
    { proto: 'tcp', hostPort: 8443, guestIp: '2001:DB8:ca2:2::10', guestPort: 443, family: 'ipv6' },
  ],
};

describe('planPortForwards', () => {
  it('plans DNAT in prerouting and output, forward accept and hairpin masquerade, canonical addresses', () => {
    const rs = planPortForwards(input);
    const dnat = rs.rules.filter((r) => r.kind === 'dnat');
    expect(dnat).toHaveLength(6);
    expect(dnat.filter((r) => r.kind === 'dnat' && r.hook === 'output')).toHaveLength(3);
    expect(rs.rules).toContainEqual({
      kind: 'forward-accept',
      family: 'ipv6',
      bridge: 'virbr0',
      proto: 'tcp',
      guestIp: '2001:db8:ca2:2::10',
      guestPort: 443,
    });
    const hairpins = rs.rules
      .filter((r) => r.kind === 'hairpin-masquerade')
      .map((r) => (r.kind === 'hairpin-masquerade' ? r.source : ''));
    // Subnet hairpins per forward, 127/8 only for the IPv4 forward without a host address.
    expect(hairpins).toEqual(['192.168.122.0/24', '127.0.0.0/8', '192.168.122.0/24', '2001:db8:ca2:2::/64']);
    expect(rs.sysctls).toEqual({ 'net.ipv4.conf.virbr0.route_localnet': '1' });
  });

  it('refuses bad input with one problem per field', () => {
    try {
      planPortForwards({
        ...input,
        bridge: 'br+',
        forwards: [
          { proto: 'sctp' as 'tcp', hostPort: 0, guestIp: '10.0.0.1\n', guestPort: 70000, family: 'ipv4' },
          {
            proto: 'tcp',
            hostPort: 80,
            guestIp: 'fd00::1',
            guestPort: 80,
            family: 'ipv4',
            hostAddress: '::1',
          },
          { proto: 'tcp', hostPort: 81, guestIp: '10.0.0.2', guestPort: 80, family: 'ipv4' },
          { proto: 'tcp', hostPort: 81, guestIp: '10.0.0.3', guestPort: 80, family: 'ipv4' },
        ],
      });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).problems.map((p) => p.path)).toEqual([
        'bridge',
        'forwards[0].proto',
        'forwards[0].hostPort',
        'forwards[0].guestPort',
        'forwards[0].guestIp',
        'forwards[1].guestIp',
        'forwards[1].hostAddress',
        'forwards[3].hostPort',
      ]);
    }
  });
});

describe('port-forward rendering', () => {
  it('nft: one table per family of the domain, atomic replace, strict remove', () => {
    const s = renderPortForwardsNftables(planPortForwards(input));
    const T = nftPortForwardTable('default', 'web1');
    expect(T).toMatch(/^virtnet_pf_web1_[0-9a-f]{8}$/);
    expect(s.apply).toBe(
      [
        `table ip ${T}`,
        `delete table ip ${T}`,
        `table ip6 ${T}`,
        `delete table ip6 ${T}`,
        `table ip ${T} {`,
        '\tchain prerouting {',
        '\t\ttype nat hook prerouting priority -100; policy accept;',
        '\t\tfib daddr type local tcp dport 8080 counter dnat to 192.168.122.10:80',
        '\t\tip daddr 203.0.113.5 udp dport 5353 counter dnat to 192.168.122.10:53',
        '\t}',
        '\tchain output {',
        '\t\ttype nat hook output priority -100; policy accept;',
        '\t\tfib daddr type local tcp dport 8080 counter dnat to 192.168.122.10:80',
        '\t\tip daddr 203.0.113.5 udp dport 5353 counter dnat to 192.168.122.10:53',
        '\t}',
        '\tchain postrouting {',
        '\t\ttype nat hook postrouting priority 99; policy accept;',
        '\t\tip saddr 192.168.122.0/24 ip daddr 192.168.122.10 tcp dport 80 ct status dnat counter masquerade',
        '\t\tip saddr 127.0.0.0/8 ip daddr 192.168.122.10 tcp dport 80 ct status dnat counter masquerade',
        '\t\tip saddr 192.168.122.0/24 ip daddr 192.168.122.10 udp dport 53 ct status dnat counter masquerade',
        '\t}',
        '}',
        `table ip6 ${T} {`,
        '\tchain prerouting {',
        '\t\ttype nat hook prerouting priority -100; policy accept;',
        '\t\tfib daddr type local tcp dport 8443 counter dnat to [2001:db8:ca2:2::10]:443',
        '\t}',
        '\tchain output {',
        '\t\ttype nat hook output priority -100; policy accept;',
        '\t\tip6 daddr != ::1 fib daddr type local tcp dport 8443 counter dnat to [2001:db8:ca2:2::10]:443',
        '\t}',
        '\tchain postrouting {',
        '\t\ttype nat hook postrouting priority 99; policy accept;',
        '\t\tip6 saddr 2001:db8:ca2:2::/64 ip6 daddr 2001:db8:ca2:2::10 tcp dport 443 ct status dnat counter masquerade',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
    expect(s.remove).toBe(`delete table ip ${T}\ndelete table ip6 ${T}\n`);
  });

  it('iptables: own chains hooked at the head of PREROUTING, OUTPUT, POSTROUTING and FORWARD', () => {
    const s = renderPortForwardsIptables(planPortForwards(input));
    const stem = iptablesPortForwardStem('default', 'web1');
    expect(stem).toMatch(/^VP-web1_[0-9a-f]{8}$/);
    expect(s.v4.apply).toBe(
      [
        '*filter',
        `:${stem}-FWD - [0:0]`,
        `-A ${stem}-FWD -d 192.168.122.10/32 -o virbr0 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT`,
        `-A ${stem}-FWD -d 192.168.122.10/32 -o virbr0 -p udp -m udp --dport 53 -m conntrack --ctstate DNAT -j ACCEPT`,
        `-I FORWARD 1 -j ${stem}-FWD`,
        'COMMIT',
        '*nat',
        `:${stem}-PRE - [0:0]`,
        `:${stem}-OUT - [0:0]`,
        `:${stem}-PST - [0:0]`,
        `-A ${stem}-PRE -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -j DNAT --to-destination 192.168.122.10:80`,
        `-A ${stem}-PRE -d 203.0.113.5/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 192.168.122.10:53`,
        `-A ${stem}-OUT -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -j DNAT --to-destination 192.168.122.10:80`,
        `-A ${stem}-OUT -d 203.0.113.5/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 192.168.122.10:53`,
        `-A ${stem}-PST -s 192.168.122.0/24 -d 192.168.122.10/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j MASQUERADE`,
        `-A ${stem}-PST -s 127.0.0.0/8 -d 192.168.122.10/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j MASQUERADE`,
        `-A ${stem}-PST -s 192.168.122.0/24 -d 192.168.122.10/32 -p udp -m udp --dport 53 -m conntrack --ctstate DNAT -j MASQUERADE`,
        `-I PREROUTING 1 -j ${stem}-PRE`,
        `-I OUTPUT 1 -j ${stem}-OUT`,
        `-I POSTROUTING 1 -j ${stem}-PST`,
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(s.v6.apply).toContain(
      `-A ${stem}-OUT ! -d ::1/128 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8443 -j DNAT --to-destination [2001:db8:ca2:2::10]:443`,
    );
    expect(s.v4.remove).toBe(
      [
        '*filter',
        `-D FORWARD -j ${stem}-FWD`,
        `-F ${stem}-FWD`,
        `-X ${stem}-FWD`,
        'COMMIT',
        '*nat',
        `-D PREROUTING -j ${stem}-PRE`,
        `-D OUTPUT -j ${stem}-OUT`,
        `-D POSTROUTING -j ${stem}-PST`,
        `-F ${stem}-PRE`,
        `-X ${stem}-PRE`,
        `-F ${stem}-OUT`,
        `-X ${stem}-OUT`,
        `-F ${stem}-PST`,
        `-X ${stem}-PST`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('a domain without forwards renders nothing to add (apply only clears stale nft tables)', () => {
    const rs = planPortForwards({ ...input, forwards: [] });
    expect(rs.rules).toEqual([]);
    expect(renderPortForwardsIptables(rs)).toEqual({
      v4: { apply: '', remove: '' },
      v6: { apply: '', remove: '' },
    });
    expect(renderPortForwardsNftables(rs).remove).toBe('');
    expect(renderPortForwardsNftables(rs).apply).not.toContain('{');
  });
});
