/**
 * The compatibility layer planner (src/plan/firewall/compat.ts) against saved filter tables: which
 * foreign chains count as blocking, what goes into each compat chain, where the jump goes, and that
 * the plan is idempotent (re-planning against the result changes nothing) and never touches a
 * foreign chain's policy or rules.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  blockingParents,
  compatChainNames,
  compatFamilies,
  compatRuleSet,
  compatRules,
  parseFilterSave,
  renderCompat,
} from '../../../src/plan/firewall/compat.js';
import { planFirewall } from '../../../src/plan/firewall/rules.js';
import { projectRoot } from '../../helpers/shared.js';
import { dhcp4, ip4, nat, net } from './fixtures.js';

const network = net({ forward: nat(), ips: [ip4('192.168.122.1', 24, { dhcp: dhcp4 })] });
const rs = planFirewall(network);
const names = compatChainNames('default');

/**
 * Apply a restore text (the subset renderCompat writes: `:decl`, -A, -I n, -D, -F, -X) to a save,
 * as iptables-restore --noflush would, and print the save again.
 */
function applyRestore(save: string, text: string): string {
  const t = parseFilterSave(save);
  for (const line of text.split('\n')) {
    let m = /^:(\S+) - /.exec(line);
    if (m) {
      t.chains.set(m[1]!, []);
      continue;
    }
    m = /^-A (\S+) (.*)$/.exec(line);
    if (m) {
      t.chains.get(m[1]!)!.push(m[2]!);
      continue;
    }
    m = /^-I (\S+) (\d+) (.*)$/.exec(line);
    if (m) {
      t.chains.get(m[1]!)!.splice(Number(m[2]) - 1, 0, m[3]!);
      continue;
    }
    m = /^-D (\S+) (.*)$/.exec(line);
    if (m) {
      const list = t.chains.get(m[1]!)!;
      const i = list.indexOf(m[2]!);
      if (i < 0) throw new Error(`-D of a missing rule: ${line}`);
      list.splice(i, 1);
      continue;
    }
    m = /^-X (\S+)$/.exec(line);
    if (m) t.chains.delete(m[1]!);
  }
  const out = ['*filter'];
  for (const [c] of t.chains) out.push(`:${c} ${t.policies.get(c) ?? '-'} [0:0]`);
  for (const [c, rules] of t.chains) for (const r of rules) out.push(`-A ${c} ${r}`.trimEnd());
  out.push('COMMIT');
  return `${out.join('\n')}\n`;
}

const EMPTY = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';
const docker28 = readFileSync(join(projectRoot, 'test/firewall/fixtures/docker28.rules'), 'utf8')
  .replace('-I FORWARD 1 -j DOCKER-USER', '-A FORWARD -j DOCKER-USER')
  .replace(/^#.*\n/gm, '')
  .replace(/^:FORWARD DROP/m, ':INPUT ACCEPT [0:0]\n:FORWARD DROP')
  .replace(/^:DOCKER -/m, ':OUTPUT ACCEPT [0:0]\n:DOCKER -')
  .split('*nat')[0]!;

describe('compat: which foreign chains can drop', () => {
  it('an empty filter table blocks nothing; policy DROP or a foreign jump does', () => {
    expect([...blockingParents(parseFilterSave(EMPTY))]).toEqual([]);
    expect([...blockingParents(parseFilterSave(docker28))]).toEqual(['FORWARD']);
    const ufwLike = EMPTY.replace(':INPUT ACCEPT', ':INPUT DROP').replace(
      'COMMIT',
      ':ufw-before-output - [0:0]\n-A OUTPUT -j ufw-before-output\nCOMMIT',
    );
    expect([...blockingParents(parseFilterSave(ufwLike))].sort()).toEqual(['INPUT', 'OUTPUT']);
  });

  it('plain accepts, logging and virtnet’s own jumps do not count', () => {
    const save = EMPTY.replace(
      'COMMIT',
      `-A FORWARD -i eth9 -j ACCEPT\n-A FORWARD -j LOG\n-A FORWARD -j VN-x_12345678-FWX\nCOMMIT`,
    );
    expect([...blockingParents(parseFilterSave(save))]).toEqual([]);
  });
});

describe('compat: the rules', () => {
  it('INPUT/OUTPUT: the host rules; FORWARD: the accepts (DNAT first), never the rejects', () => {
    expect(compatRules(rs, 'ipv4', 'INPUT')).toContain('-i virbr0 -p udp -m udp --dport 67 -j ACCEPT');
    expect(compatRules(rs, 'ipv4', 'INPUT')).toContain('-i virbr0 -p udp -m udp --dport 53 -j ACCEPT');
    expect(compatRules(rs, 'ipv4', 'OUTPUT')).toContain('-o virbr0 -p udp -m udp --dport 68 -j ACCEPT');
    expect(compatRules(rs, 'ipv4', 'FORWARD')).toEqual([
      '-i virbr0 -o virbr0 -j ACCEPT',
      '-d 192.168.122.0/24 -o virbr0 -m conntrack --ctstate DNAT -j ACCEPT',
      '-d 192.168.122.0/24 -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-s 192.168.122.0/24 -i virbr0 -j ACCEPT',
    ]);
    expect(compatRules(rs, 'ipv4', 'FORWARD').join('\n')).not.toMatch(/REJECT|DROP/);
  });
});

describe('compat: renderCompat', () => {
  it('nothing blocking: nothing to do', () => {
    expect(renderCompat('default', rs, 'ipv4', EMPTY)).toEqual({ text: '', problems: [], parents: [] });
  });

  it('Docker 28: one chain, its jump right after DOCKER-USER; idempotent; policy untouched', () => {
    const plan = renderCompat('default', rs, 'ipv4', docker28);
    expect(plan.parents).toEqual(['FORWARD']);
    expect(plan.text).toContain(`-I FORWARD 2 -j ${names.FORWARD}`);
    expect(plan.text).not.toMatch(/^-P |^:FORWARD|^-F (?!VN-)|DOCKER/m);
    const after = applyRestore(docker28, plan.text);
    expect(parseFilterSave(after).chains.get('FORWARD')).toEqual([
      '-j DOCKER-USER',
      `-j ${names.FORWARD}`,
      '-j DOCKER-FORWARD',
    ]);
    expect(parseFilterSave(after).policies.get('FORWARD')).toBe('DROP');
    expect(renderCompat('default', rs, 'ipv4', after).text).toBe('');
  });

  it('repairs a flushed chain, a lost jump, a duplicated jump and a jump pushed down, never duplicating', () => {
    const good = applyRestore(docker28, renderCompat('default', rs, 'ipv4', docker28).text);
    const flushed = good.replace(new RegExp(`^-A ${names.FORWARD} .*\\n`, 'gm'), '');
    const noJump = good.replace(`-A FORWARD -j ${names.FORWARD}\n`, '');
    const twice = good.replace(
      `-A FORWARD -j ${names.FORWARD}\n`,
      `-A FORWARD -j ${names.FORWARD}\n-A FORWARD -j ${names.FORWARD}\n`,
    );
    const pushed = good
      .replace(`-A FORWARD -j ${names.FORWARD}\n`, '')
      .replace(
        '-A FORWARD -j DOCKER-FORWARD',
        `-A FORWARD -j DOCKER-FORWARD\n-A FORWARD -j ${names.FORWARD}`,
      );
    for (const [what, save, problem] of [
      ['flushed', flushed, /rules of .* differ/],
      ['no jump', noJump, /jump to .* missing/],
      ['twice', twice, /not at the head \(2 found\)/],
      ['pushed down', pushed, /not at the head \(1 found\)/],
    ] as const) {
      const plan = renderCompat('default', rs, 'ipv4', save);
      expect(plan.problems.join(' '), what).toMatch(problem);
      const fixed = applyRestore(save, plan.text);
      expect(fixed, what).toBe(good);
    }
  });

  it('stop (no rule set): removes exactly the layer, leaves Docker as it was', () => {
    const good = applyRestore(docker28, renderCompat('default', rs, 'ipv4', docker28).text);
    const plan = renderCompat('default', undefined, 'ipv4', good);
    expect(plan.text).toMatch(
      new RegExp(`-D FORWARD -j ${names.FORWARD}\\n-F ${names.FORWARD}\\n-X ${names.FORWARD}`),
    );
    expect(applyRestore(good, plan.text)).toBe(applyRestore(docker28, ''));
    expect(renderCompat('default', undefined, 'ipv4', docker28).text).toBe('');
  });

  it('the foreign drop went away: the layer is taken out again', () => {
    const good = applyRestore(docker28, renderCompat('default', rs, 'ipv4', docker28).text);
    const accepting = good
      .replace(':FORWARD DROP', ':FORWARD ACCEPT')
      .replace(/^-A FORWARD -j DOCKER-.*\n/gm, '');
    const plan = renderCompat('default', rs, 'ipv4', accepting);
    expect(plan.parents).toEqual([]);
    expect(plan.problems).toEqual([`FORWARD: ${names.FORWARD} no longer needed`]);
  });
});

describe('compat: bridge mode and open mode', () => {
  it('bridge mode: one physdev accept in FORWARD for the bridge, both families; open mode: no layer', () => {
    const bridged = compatRuleSet(
      net({ forward: { mode: 'bridge', interfaces: [] }, bridge: { name: 'br0' } }),
    );
    expect(bridged?.bridge).toBe('br0');
    expect(compatFamilies(bridged!)).toEqual(['ipv4', 'ipv6']);
    expect(compatRules(bridged!, 'ipv4', 'FORWARD')).toEqual([
      '-i br0 -o br0 -m physdev --physdev-is-bridged -j ACCEPT',
    ]);
    expect(compatRules(bridged!, 'ipv6', 'INPUT')).toEqual([]);
    const plan = renderCompat('default', bridged, 'ipv4', docker28);
    expect(plan.parents).toEqual(['FORWARD']);
    expect(
      compatRuleSet(net({ forward: { mode: 'open', interfaces: [] }, ips: [ip4('10.0.0.1', 24)] })),
    ).toBe(undefined);
  });
});
