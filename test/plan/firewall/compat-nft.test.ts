/**
 * The native-nftables part of the compatibility layer (renderNftCompat): which foreign chains get
 * the accepts (a forward base chain with policy drop of Docker 29's `docker-bridges` tables), that they go to the head in order, that the plan is recognised again from the rules'
 * comments (idempotent), repaired when a rule is lost, and removed at stop.
 */
import { describe, expect, it } from 'vitest';
import {
  type NftBaseChain,
  nftCompatRules,
  parseNftBaseChains,
  renderNftCompat,
} from '../../../src/plan/firewall/compat.js';
import { planFirewall } from '../../../src/plan/firewall/rules.js';
import { dhcp4, ip4, nat, net } from './fixtures.js';

const rs = planFirewall(net({ forward: nat(), ips: [ip4('192.168.122.1', 24, { dhcp: dhcp4 })] }));

const chain = (over: Partial<NftBaseChain> = {}): NftBaseChain => ({
  family: 'ip',
  table: 'docker-bridges',
  name: 'filter-FORWARD',
  hook: 'forward',
  policy: 'drop',
  rules: [{ handle: 3 }, { handle: 4 }],
  ...over,
});

/** The chain after the plan's text, as nft would leave it (handles counted on from 100). */
function apply(c: NftBaseChain, text: string): NftBaseChain {
  let rules = [...c.rules];
  let next = 100;
  for (const line of text.split('\n').filter(Boolean)) {
    const del = / handle (\d+)$/.exec(line);
    if (line.startsWith('delete rule') && del) rules = rules.filter((r) => r.handle !== Number(del[1]));
    const ins = /^insert rule .* comment "([^"]+)"$/.exec(line);
    if (ins) rules = [{ handle: next++, comment: ins[1]! }, ...rules];
  }
  return { ...c, rules };
}

describe('compat: foreign native nftables chains', () => {
  it('the accepts: the forward ones, a DNAT accept before the related one, never the rejects', () => {
    const r = nftCompatRules(rs, 'ipv4');
    const dnat = r.findIndex((x) =>
      /^oifname "virbr0" ip daddr 192\.168\.122\.0\/24 ct status dnat counter accept$/.test(x),
    );
    const related = r.findIndex((x) => /ct state related,established counter accept$/.test(x));
    expect(dnat).toBeGreaterThanOrEqual(0);
    expect(related).toBe(dnat + 1);
    expect(r.some((x) => /reject/.test(x))).toBe(false);
    expect(r.some((x) => /iifname "virbr0" ip saddr 192\.168\.122\.0\/24 counter accept/.test(x))).toBe(true);
  });

  it('Docker 29 with policy drop: accepts at the head in order; idempotent; repaired; removed at stop', () => {
    const c = chain();
    const p = renderNftCompat('default', rs, 'ipv4', [c]);
    expect(p.problems).toEqual(['FORWARD: ip docker-bridges filter-FORWARD accepts missing']);
    expect(p.parents).toEqual(['FORWARD']);
    expect(p.text).not.toMatch(/policy/);
    const after = apply(c, p.text);
    const n = nftCompatRules(rs, 'ipv4').length;
    expect(after.rules.slice(0, n).map((r) => r.comment?.split(':')[3])).toEqual(
      [...Array(n).keys()].map(String),
    );
    expect(after.rules.slice(n)).toEqual(c.rules);
    expect(renderNftCompat('default', rs, 'ipv4', [after]).text).toBe('');
    // One accept lost (someone deleted it): all of ours replaced, none duplicated.
    const lost = { ...after, rules: after.rules.filter((_, i) => i !== 1) };
    const fix = renderNftCompat('default', rs, 'ipv4', [lost]);
    expect(fix.problems[0]).toMatch(/differ or not at the head/);
    const fixed = apply(lost, fix.text);
    expect(fixed.rules.filter((r) => r.comment).length).toBe(n);
    expect(renderNftCompat('default', rs, 'ipv4', [fixed]).text).toBe('');
    // Stop: exactly Docker's rules again.
    const stop = renderNftCompat('default', undefined, 'ipv4', [fixed]);
    expect(apply(fixed, stop.text).rules).toEqual(c.rules);
  });

  it('left alone: policy accept, other hooks, iptables-nft and admin tables, the other family', () => {
    for (const c of [
      chain({ policy: 'accept' }),
      chain({ hook: 'input' }),
      chain({ table: 'filter', name: 'FORWARD' }),
      chain({ table: 'virtnet_default' }),
      chain({ family: 'inet', table: 'admin', name: 'gate' }),
      chain({ family: 'ip6' }),
    ])
      expect(renderNftCompat('default', rs, 'ipv4', [c])).toEqual({ text: '', problems: [], parents: [] });
    expect(renderNftCompat('default', rs, 'ipv6', [chain({ family: 'ip6' })]).parents).toEqual([]);
  });

  it('parses nft -j: base chains with policy, rules with handle and comment', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'ip', name: 'docker-bridges', handle: 1 } },
        {
          chain: {
            family: 'ip',
            table: 'docker-bridges',
            name: 'filter-FORWARD',
            handle: 2,
            type: 'filter',
            hook: 'forward',
            prio: 0,
            policy: 'drop',
          },
        },
        { chain: { family: 'ip', table: 'docker-bridges', name: 'filter-forward-in__docker0', handle: 3 } },
        { rule: { family: 'ip', table: 'docker-bridges', chain: 'filter-FORWARD', handle: 7, expr: [] } },
        {
          rule: {
            family: 'ip',
            table: 'docker-bridges',
            chain: 'filter-FORWARD',
            handle: 8,
            comment: 'x',
            expr: [],
          },
        },
        { rule: { family: 'ip', table: 'docker-bridges', chain: 'filter-forward-in__docker0', handle: 9 } },
      ],
    });
    expect(parseNftBaseChains(json)).toEqual([
      chain({ rules: [{ handle: 7 }, { handle: 8, comment: 'x' }] }),
    ]);
  });
});
