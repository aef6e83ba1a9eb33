/**
 * IPv6 with real parts, both backends: a dual-stack NAT network — the bridge's IPv6 address, IPv6
 * forwarding switched on and restored, the ip6 rules, router advertisements from dnsmasq (the guest
 * learns its default route), IPv6 forwarded without NAT (as libvirt does unless `<nat ipv6='yes'>`),
 * zero residue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAllNetns, createNetns, guestDhcp, link } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import {
  dhcpv6Solicit,
  EngineDriver,
  guestMac,
  peerEcho,
  snapshot,
  type Topology,
  tcpProbe,
  testNetwork,
  topology,
  waitFor,
} from './engine-harness.js';

const skip = missingPrereqs([
  'ip',
  'nft',
  'iptables-restore',
  'ip6tables-restore',
  'dnsmasq',
  'busybox',
  'node',
]);

const net = testNetwork({
  name: 'vh5v6',
  bridge: { name: 'vbr0', stp: false, delay: 0 },
  ips: [
    {
      family: 'ipv4',
      address: '10.55.0.1',
      prefix: 24,
      dhcp: { ranges: [{ start: '10.55.0.100', end: '10.55.0.200' }], hosts: [] },
    },
    {
      family: 'ipv6',
      address: 'fd55::1',
      prefix: 64,
      dhcp: { ranges: [{ start: 'fd55::100', end: 'fd55::1ff' }], hosts: [] },
    },
  ],
});

for (const backend of ['nftables', 'iptables'] as const) {
  describe.skipIf(skip)(`engine: IPv6 (${backend})`, () => {
    let t: Topology;
    let eng: EngineDriver;
    beforeAll(async () => {
      t = await topology(createNetns, link, 1);
      await t.host.addAddr('wan0', '2001:db8:55::2/64');
      await t.up.addAddr('up0', '2001:db8:55::1/64');
      await t.up.addRoute('fd55::/64', { via: '2001:db8:55::2' });
      // Wait for DAD on the new global addresses before taking the "before" picture.
      await waitFor(
        async () => (await t.host.exec(['ip', '-6', 'addr', 'show', 'tentative'])).stdout.trim() === '',
        5000,
      );
      await waitFor(
        async () => (await t.up.exec(['ip', '-6', 'addr', 'show', 'tentative'])).stdout.trim() === '',
        5000,
      );
      await t.host.addRoute('default', { via: '2001:db8:55::1' });
      t.before = await snapshot(t.host);
      eng = EngineDriver.spawn(t.host);
      await eng.call('create', { runDir: t.runDir, firewall: backend });
    });
    afterAll(async () => {
      await eng?.end().catch(() => {});
      cleanupAllNetns();
    });

    it('starts dual stack: address, forwarding, bridge sysctls, ip6 rules', async () => {
      await eng.call('start', net);
      await eng.call('attachPort', net.name, 'vnet0');
      const a6 = (await t.host.exec(['ip', '-6', '-o', 'addr', 'show', 'dev', 'vbr0', 'scope', 'global']))
        .stdout;
      expect(a6).toContain('fd55::1/64');
      expect(a6).not.toContain('tentative');
      const sys = async (k: string) =>
        (await t.host.exec(['cat', `/proc/sys/net/ipv6/conf/${k}`])).stdout.trim();
      expect(await sys('all/forwarding')).toBe('1');
      expect(await sys('vbr0/accept_ra')).toBe('0');
      expect(await sys('vbr0/autoconf')).toBe('0');
      expect(await sys('vbr0/disable_ipv6')).toBe('0');
      const s = await snapshot(t.host);
      if (backend === 'nftables') expect(s.nft).toMatch(/table ip6 virtnet_/);
      else expect(s.ip6tables).toContain('fd55::/64');
    });

    it('dnsmasq advertises the router: the guest learns its IPv6 default route', async () => {
      const g = t.guests[0]!;
      await guestDhcp(g, 'eth0'); // IPv4 as usual
      // Link down/up makes the guest send a router solicitation now.
      await g.exec(['ip', 'link', 'set', 'eth0', 'down']);
      await g.exec(['ip', 'link', 'set', 'eth0', 'up']);
      await waitFor(
        async () =>
          /default via fe80::\S+ dev eth0 proto ra/.test((await g.exec(['ip', '-6', 'route'])).stdout),
        15_000,
        'an RA default route in the guest',
      );
    });

    it('dnsmasq offers a DHCPv6 address from the range', async () => {
      const offered = await dhcpv6Solicit(t.guests[0]!, 'eth0', guestMac(0));
      expect(offered).toBeDefined();
      // fd55:0:0:0:0:0:0:1xx, inside fd55::100 – fd55::1ff
      expect(offered).toMatch(/^fd55:0:0:0:0:0:0:1[0-9a-f]{2}$/);
    });

    it('IPv6 is forwarded without NAT: the uplink sees the guest address', async () => {
      const g = t.guests[0]!;
      await g.exec(['ip', 'addr', 'add', 'fd55::50/64', 'dev', 'eth0', 'nodad']);
      await g.exec(['ip', '-6', 'route', 'replace', 'default', 'via', 'fd55::1']);
      const srv = peerEcho(t.up, 8080);
      await waitFor(() => srv.output().stdout.includes('listening'));
      expect(await tcpProbe(g, '2001:db8:55::1', 8080)).toBe('fd55::50');
      srv.kill();
    });

    it('stops leaving nothing behind (IPv6 forwarding back off)', async () => {
      await eng.call('stop', net.name);
      const after = await snapshot(t.host);
      expect(after).toEqual(t.before);
      expect((await t.host.exec(['cat', '/proc/sys/net/ipv6/conf/all/forwarding'])).stdout.trim()).toBe('0');
    });
  });
}
