/**
 * The firewall renderers' output loaded into real kernels: every golden network's nftables script and
 * iptables-restore texts (iptables-nft and iptables-legacy) go into a throwaway network namespace of
 * this test (prefix vh3-); the test checks what the kernel reports back, that re-applying does not
 * duplicate anything, and that removal leaves the ruleset exactly as it was before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderIptables, renderIptablesReplace } from '../../src/plan/firewall/iptables.js';
import { nftRemoveAnyScript, renderNftables } from '../../src/plan/firewall/nftables.js';
import {
  type PortForwardInput,
  planPortForwards,
  renderPortForwardsIptables,
  renderPortForwardsNftables,
} from '../../src/plan/firewall/portforward.js';
import { planFirewall } from '../../src/plan/firewall/rules.js';
import { cleanupAllNetns, createNetns, type Netns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { goldenNetworks } from '../plan/firewall/fixtures.js';

/** A domain with IPv4 and IPv6 forwards, with and without a host address. */
const forwards: PortForwardInput = {
  network: 'default',
  bridge: 'virbr0',
  domain: 'web1',
  subnets: ['192.168.122.0/24', '2001:db8:ca2:2::/64'],
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
    { proto: 'tcp', hostPort: 8443, guestIp: '2001:db8:ca2:2::10', guestPort: 443, family: 'ipv6' },
    {
      proto: 'tcp',
      hostPort: 2222,
      guestIp: '2001:db8:ca2:2::10',
      guestPort: 22,
      family: 'ipv6',
      hostAddress: '2001:db8::5',
    },
  ],
};

const skip = missingPrereqs([
  'ip',
  'nft',
  'iptables-restore',
  'ip6tables-restore',
  'iptables-legacy-restore',
]);

/** iptables-save output without comments, as a list of lines. */
function saveLines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * What a save says the kernel DOES: every rule and every user chain, and builtin chains only when
 * their policy is not ACCEPT. iptables creates a builtin table (with its empty ACCEPT chains) the
 * first time anything touches it and never deletes it; that is not a residue of our rules.
 */
function effective(lines: string[]): string[] {
  const out: string[] = [];
  let section: string[] = [];
  for (const l of lines) {
    if (l.startsWith('*')) section = [l];
    else if (l === 'COMMIT') {
      if (section.length > 1) out.push(...section, l);
    } else if (
      l.startsWith('-') ||
      (l.startsWith(':') && !/^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT /.test(l))
    )
      section.push(l);
  }
  return out;
}

/** The `-A` lines of a restore/save text, grouped per chain in order (ignoring the table order). */
function rulesByChain(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let table = '';
  for (const l of saveLines(text)) {
    if (l.startsWith('*')) table = l;
    const m = /^-A (\S+) /.exec(l);
    if (m?.[1]) {
      const key = `${table} ${m[1]}`;
      out[key] = [...(out[key] ?? []), l];
    }
  }
  return out;
}

/** Our own chains' rules from a text (jumps from builtin chains excluded). */
function ownRules(text: string): Record<string, string[]> {
  return Object.fromEntries(Object.entries(rulesByChain(text)).filter(([k]) => / V[NP]-/.test(k)));
}

describe.skipIf(skip !== undefined)('firewall scripts in a real kernel (netns)', () => {
  let ns: Netns;
  beforeAll(async () => {
    ns = await createNetns('vh3-');
  });
  afterAll(() => cleanupAllNetns());

  const nft = (script: string, opts: { check?: boolean; allowFail?: boolean } = {}) =>
    ns.exec(opts.check ? ['nft', '-c', '-f', '-'] : ['nft', '-f', '-'], {
      input: script,
      allowFail: opts.allowFail,
    });
  const ruleset = async () => (await ns.exec(['nft', 'list', 'ruleset'])).stdout;

  describe('nftables', () => {
    for (const [name, network] of Object.entries(goldenNetworks)) {
      it(`${name}: apply, re-apply, check, remove → ruleset as before`, async () => {
        const before = await ruleset();
        const s = renderNftables(planFirewall(network));
        await nft(s.apply);
        const applied = await ruleset();
        if (s.remove === '') {
          expect(applied).toBe(before);
          return;
        }
        expect(applied).toContain('chain guest_input');
        // Re-applying is an atomic replacement: the same ruleset, no duplicate rule.
        await nft(s.apply);
        expect(await ruleset()).toBe(applied);
        // `nft -c` of the removal succeeds exactly when the tables are present.
        expect((await nft(s.remove, { check: true, allowFail: true })).exitCode).toBe(0);
        await nft(s.remove);
        expect(await ruleset()).toBe(before);
        expect((await nft(s.remove, { check: true, allowFail: true })).exitCode).not.toBe(0);
        // Removing "whatever is there" works on an empty ruleset too.
        await nft(nftRemoveAnyScript(network.name));
        expect(await ruleset()).toBe(before);
      });
    }

    it('swapping a network to a plan without IPv6 drops its ip6 table in the same transaction', async () => {
      const before = await ruleset();
      const withV6 = goldenNetworks['nat-ipv6-masquerade']!;
      await nft(renderNftables(planFirewall(withV6)).apply);
      expect(await ruleset()).toContain('table ip6 ');
      const v4only = { ...withV6, ips: withV6.ips.filter((i) => i.family === 'ipv4') };
      const s = renderNftables(planFirewall(v4only));
      await nft(s.apply);
      const after = await ruleset();
      expect(after).not.toContain('table ip6 ');
      expect(after).toContain('table ip ');
      await nft(s.remove);
      expect(await ruleset()).toBe(before);
    });

    it('loads while the bridge and forward dev do not exist (names, not indexes)', async () => {
      const links = (await ns.exec(['ip', '-o', 'link'])).stdout;
      expect(links).not.toContain('virbr0');
      const s = renderNftables(planFirewall(goldenNetworks['nat-forward-dev']!));
      await nft(s.apply);
      await nft(s.remove);
    });
  });

  it('nftables: a domain port-forward table (IPv4 and IPv6) loads, replaces itself and goes away', async () => {
    const before = await ruleset();
    const s = renderPortForwardsNftables(planPortForwards(forwards));
    await nft(s.apply);
    const applied = await ruleset();
    expect(applied).toContain('dnat to [2001:db8:ca2:2::10]:443');
    expect(applied).toContain('fib daddr type local tcp dport 8080');
    await nft(s.apply);
    expect(await ruleset()).toBe(applied);
    await nft(s.remove);
    expect(await ruleset()).toBe(before);
  });

  for (const variant of ['nft', 'legacy'] as const) {
    const restore = (fam: 'v4' | 'v6') =>
      variant === 'nft'
        ? [fam === 'v4' ? 'iptables-restore' : 'ip6tables-restore', '--noflush', '-w']
        : [fam === 'v4' ? 'iptables-legacy-restore' : 'ip6tables-legacy-restore', '--noflush', '-w'];
    const save = (fam: 'v4' | 'v6') =>
      variant === 'nft'
        ? [fam === 'v4' ? 'iptables-save' : 'ip6tables-save']
        : [fam === 'v4' ? 'iptables-legacy-save' : 'ip6tables-legacy-save'];

    describe(`iptables (${variant})`, () => {
      let own: Netns;
      beforeAll(async () => {
        own = await createNetns('vh3-');
      });
      const dump = async (fam: 'v4' | 'v6') =>
        effective(saveLines((await own.exec(save(fam))).stdout)).join('\n');
      const load = (fam: 'v4' | 'v6', text: string, allowFail = false) =>
        own.exec(restore(fam), { input: text, allowFail });

      for (const [name, network] of Object.entries(goldenNetworks)) {
        it(`${name}: apply → kernel shows exactly the planned rules; remove → as before`, async () => {
          const scripts = renderIptables(planFirewall(network));
          for (const f of ['v4', 'v6'] as const) {
            const s = scripts[f];
            if (s.apply === '') {
              expect(s.remove).toBe('');
              continue;
            }
            const before = await dump(f);
            await load(f, s.apply);
            const after = await dump(f);
            expect(ownRules(after)).toEqual(ownRules(s.apply));
            // The jumps sit at the head of the builtin chains, in libvirt's order.
            const jumps = (rulesByChain(after)['*filter FORWARD'] ?? []).filter((l) => l.includes(' -j VN-'));
            expect(jumps.map((l) => l.slice(-3))).toEqual(['FWX', 'FWI', 'FWO']);
            await load(f, s.remove);
            expect(await dump(f)).toBe(before);
            // The removal is all or nothing: a second one fails and changes nothing.
            expect((await load(f, s.remove, true)).exitCode).not.toBe(0);
            expect(await dump(f)).toBe(before);
          }
        });
      }

      it('a domain port forward (IPv4 and IPv6): kernel shows exactly the planned rules; remove → as before', async () => {
        const scripts = renderPortForwardsIptables(planPortForwards(forwards));
        for (const f of ['v4', 'v6'] as const) {
          const s = scripts[f];
          const before = await dump(f);
          await load(f, s.apply);
          expect(ownRules(await dump(f))).toEqual(ownRules(s.apply));
          await load(f, s.remove);
          expect(await dump(f)).toBe(before);
        }
      });

      it('replace after a crash (jumps applied twice) leaves exactly one jump per chain', async () => {
        const rs = planFirewall(goldenNetworks['nat-ipv6-masquerade']!);
        const s = renderIptables(rs);
        const before = await dump('v4');
        await load('v4', s.v4.apply);
        await load('v4', s.v4.apply); // a blind re-apply duplicates the jumps
        const dup = await dump('v4');
        expect(dup.split('\n').filter((l) => l === '-A FORWARD -j VN-default_37a8eec1-FWX')).toHaveLength(2);
        const fix = renderIptablesReplace(rs, 'ipv4', (await own.exec(save('v4'))).stdout);
        await load('v4', fix);
        const fixed = await dump('v4');
        expect(fixed.split('\n').filter((l) => l === '-A FORWARD -j VN-default_37a8eec1-FWX')).toHaveLength(
          1,
        );
        expect(ownRules(fixed)).toEqual(ownRules(s.v4.apply));
        // Replacing with a smaller plan (no DHCP → no mangle chain) drops the chain no longer planned.
        const smaller = planFirewall({
          ...goldenNetworks['nat-ipv6-masquerade']!,
          ips: goldenNetworks['nat-ipv6-masquerade']!.ips.map(({ dhcp: _d, ...ip }) => ip),
        });
        await load('v4', renderIptablesReplace(smaller, 'ipv4', (await own.exec(save('v4'))).stdout));
        const shrunk = await dump('v4');
        expect(shrunk).not.toContain('CHECKSUM');
        expect(ownRules(shrunk)).toEqual(ownRules(renderIptables(smaller).v4.apply));
        await load('v4', renderIptables(smaller).v4.remove);
        expect(await dump('v4')).toBe(before);
      });
    });
  }
});
