/**
 * The compatibility layer for iptables rule sets written by other programs (Docker ≤ 28, ufw, an
 * admin's iptables script), planned as data. Pure.
 *
 * Why it exists: every base chain on a netfilter hook judges every packet, and a drop anywhere is
 * final. A `FORWARD` chain with policy DROP in iptables' `filter` table (Docker, ufw) therefore drops
 * a guest's traffic however early and however explicitly virtnet's own nft table accepts it. Only an
 * accept IN THE CHAIN THAT HOLDS THE DROP wins. So, for each iptables variant (iptables-nft, legacy)
 * other than the one virtnet's own rules live in, and each of `INPUT`, `OUTPUT`, `FORWARD` of its
 * `filter` table that can drop (a policy other than ACCEPT, or any rule that is not a plain accept),
 * the layer puts one chain of the network's own, with accepts for exactly the traffic virtnet's rules
 * allow, and one jump to it at the head of that chain:
 * - `<stem>-CIN` (INPUT): DHCP, DNS, TFTP, DHCPv6 from the guests to the host (the host-input rules);
 * - `<stem>-COU` (OUTPUT): the replies (host-output rules);
 * - `<stem>-CFW` (FORWARD): guest-to-guest, out of the subnet, related/established into it, routed
 *   traffic into it, and DNATed connections into it (port forwards) — never the rejects: virtnet's
 *   own rules still decide what is refused.
 * Bridge mode (a guest on a host bridge, virtnet installs no rules of its own): with br_netfilter,
 * frames bridged between two ports pass iptables' FORWARD too, so a foreign FORWARD drop cuts the
 * guest off its LAN; `<stem>-CFW` then accepts what is bridged on the network's bridge
 * (`-i BR -o BR -m physdev --physdev-is-bridged`), in every variant, IPv4 and IPv6.
 * "Head" is position 1, or 2 when the first rule is Docker's `-j DOCKER-USER` (the place Docker keeps
 * for the admin's own rules, which then still come first).
 *
 * It never changes a foreign chain's policy and never flushes a chain that is not its own: it only
 * inserts and deletes its own jumps and creates, fills and deletes its own chains.
 *
 * `renderCompat` compares what is planned with the variant's current `iptables-save` and returns one
 * `iptables-restore --noflush` text that makes it exactly so (chains with exactly the planned rules,
 * exactly one jump each, at the head), plus what was wrong, or '' when all is in place — the same
 * function starts, repairs and (with nothing planned) removes the layer, and never duplicates a rule.
 */

import type { Network } from '../../model/network.js';
import { iptablesRuleSpec } from './iptables.js';
import { nftRule } from './nftables.js';
import type { FirewallRuleSet, FwFamily } from './rules.js';
import { chainRules, familiesOf, planFirewall } from './rules.js';
import { assertChain, assertCidr, assertIfname, iptablesNetworkStem } from './safe.js';

/** The two ways iptables reaches the kernel: through nftables (`iptables-nft`) or x_tables (legacy). */
export type IptVariant = 'nft' | 'legacy';

export type CompatParent = 'INPUT' | 'OUTPUT' | 'FORWARD';

const SPECS: readonly { parent: CompatParent; suffix: string }[] = [
  { parent: 'INPUT', suffix: 'CIN' },
  { parent: 'OUTPUT', suffix: 'COU' },
  { parent: 'FORWARD', suffix: 'CFW' },
];

/** The `filter` table of an `iptables-save`: policies of the built-in chains, rules per chain. */
export interface SavedFilter {
  policies: Map<string, string>;
  /** Chain → its rules, each as iptables-save prints it without the leading `-A CHAIN `. */
  chains: Map<string, string[]>;
}

export function parseFilterSave(save: string): SavedFilter {
  const policies = new Map<string, string>();
  const chains = new Map<string, string[]>();
  let inFilter = false;
  for (const raw of save.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      inFilter = line === '*filter';
      continue;
    }
    if (!inFilter) continue;
    if (line === 'COMMIT') {
      inFilter = false;
      continue;
    }
    const decl = /^:(\S+) (\S+)/.exec(line);
    if (decl) {
      if (decl[2] !== '-') policies.set(decl[1]!, decl[2]!);
      if (!chains.has(decl[1]!)) chains.set(decl[1]!, []);
      continue;
    }
    const rule = /^-A (\S+) ?(.*)$/.exec(line);
    if (rule) {
      const list = chains.get(rule[1]!) ?? [];
      list.push(rule[2]!);
      chains.set(rule[1]!, list);
    }
  }
  return { policies, chains };
}

/** The compat chain names of a network (whatever is planned), by parent. */
export function compatChainNames(network: string): Record<CompatParent, string> {
  const stem = iptablesNetworkStem(network);
  const out = {} as Record<CompatParent, string>;
  for (const s of SPECS) out[s.parent] = assertChain(`${stem}-${s.suffix}`);
  return out;
}

/** True for a rule that can only let packets on (an accept, or logging), never drop them. */
function harmless(rule: string): boolean {
  return /(^| )-j (ACCEPT|LOG|NFLOG)( |$)/.test(rule);
}

/**
 * The built-in chains of a saved filter table that can drop a packet: policy other than ACCEPT, or a
 * rule that is not a plain accept (a DROP/REJECT, or a jump into a chain that may hold one). Jumps
 * into virtnet's own chains (`VN-`, `VP-`) do not count.
 */
export function blockingParents(saved: SavedFilter): Set<CompatParent> {
  const out = new Set<CompatParent>();
  for (const { parent } of SPECS) {
    const policy = saved.policies.get(parent) ?? 'ACCEPT';
    const rules = (saved.chains.get(parent) ?? []).filter((r) => !/^-j V[NP]-\S+$/.test(r));
    if (policy !== 'ACCEPT' || rules.some((r) => !harmless(r))) out.add(parent);
  }
  return out;
}

/**
 * What the layer of a network is planned from: its rule set, or for bridge mode the bare set naming
 * its bridge. Undefined when the network needs no layer (open mode, nothing to accept).
 */
export function compatRuleSet(net: Network): FirewallRuleSet | undefined {
  const rs = planFirewall(net);
  if (rs.rules.length) return rs;
  if (net.forward.mode === 'bridge' && net.bridge.name)
    return { ...rs, bridge: assertIfname(net.bridge.name) };
  return undefined;
}

/** The families the layer covers: those the network has rules in; both for bridge mode. */
export function compatFamilies(rs: FirewallRuleSet): FwFamily[] {
  return rs.mode === 'bridge' ? ['ipv4', 'ipv6'] : familiesOf(rs);
}

/** The accepts of one compat chain, in iptables-save form (empty when the network has none). */
export function compatRules(rs: FirewallRuleSet, family: FwFamily, parent: CompatParent): string[] {
  if (rs.mode === 'bridge') {
    if (parent !== 'FORWARD' || !rs.bridge) return [];
    const br = assertIfname(rs.bridge);
    return [`-i ${br} -o ${br} -m physdev --physdev-is-bridged -j ACCEPT`];
  }
  if (parent === 'INPUT') return chainRules(rs, family, 'host-input').map(iptablesRuleSpec);
  if (parent === 'OUTPUT') return chainRules(rs, family, 'host-output').map(iptablesRuleSpec);
  const out: string[] = [];
  for (const chain of ['forward-cross', 'forward-in', 'forward-out'] as const) {
    for (const r of chainRules(rs, family, chain)) {
      if (r.kind === 'forward-reject-in' || r.kind === 'forward-reject-out') continue;
      if (r.kind === 'forward-allow-related-in' && rs.mode === 'nat') {
        // Port forwards: connections the host DNATed into the subnet (as the network's own rules).
        const phys = r.physdev ? ` -i ${assertIfname(r.physdev)}` : '';
        out.push(
          `-d ${assertCidr(r.subnet, family)}${phys} -o ${assertIfname(r.bridge)} -m conntrack --ctstate DNAT -j ACCEPT`,
        );
      }
      out.push(iptablesRuleSpec(r));
    }
  }
  return out;
}

export interface CompatPlan {
  /** `iptables-restore --noflush` text; '' when the kernel already matches the plan. */
  text: string;
  /** What was wrong (for the log), e.g. "FORWARD: jump to VN-x-CFW missing". Empty when text is ''. */
  problems: string[];
  /** The parents the layer is in after `text` ran. */
  parents: CompatParent[];
}

/** Where the jump belongs in `rules` (the parent's rules without our jump): 1, or 2 after DOCKER-USER. */
function headPosition(rules: string[]): number {
  return rules[0] === '-j DOCKER-USER' ? 2 : 1;
}

/**
 * What to run so that the variant's filter table holds exactly the planned layer for `rs` and
 * `family` (`rs` undefined or `remove`: no layer at all — the stop). `saved` is the variant's current
 * `iptables-save -t filter` (or `ip6tables-save`) output.
 */
export function renderCompat(
  network: string,
  rs: FirewallRuleSet | undefined,
  family: FwFamily,
  saved: string,
): CompatPlan {
  const state = parseFilterSave(saved);
  const blocking = blockingParents(state);
  const names = compatChainNames(network);
  const decls: string[] = [];
  const deletes: string[] = [];
  const drops: string[] = [];
  const adds: string[] = [];
  const inserts: string[] = [];
  const problems: string[] = [];
  const parents: CompatParent[] = [];
  for (const { parent } of SPECS) {
    const name = names[parent];
    const want = rs && blocking.has(parent) ? compatRules(rs, family, parent) : [];
    const have = state.chains.get(name);
    const parentRules = state.chains.get(parent) ?? [];
    const jumps = parentRules.filter((r) => r === `-j ${name}`).length;
    const others = parentRules.filter((r) => r !== `-j ${name}`);
    if (want.length === 0) {
      if (have === undefined && jumps === 0) continue;
      for (let i = 0; i < jumps; i++) deletes.push(`-D ${parent} -j ${name}`);
      if (have !== undefined) drops.push(`-F ${name}`, `-X ${name}`);
      problems.push(`${parent}: ${name} no longer needed`);
      continue;
    }
    parents.push(parent);
    const pos = headPosition(others);
    const atHead = jumps === 1 && parentRules[pos - 1] === `-j ${name}`;
    const same = have !== undefined && have.length === want.length && have.every((r, i) => r === want[i]);
    if (same && atHead) continue;
    if (have === undefined) problems.push(`${parent}: chain ${name} missing`);
    else if (!same) problems.push(`${parent}: rules of ${name} differ (${have.length} of ${want.length})`);
    if (jumps === 0) problems.push(`${parent}: jump to ${name} missing`);
    else if (!atHead) problems.push(`${parent}: jump to ${name} not at the head (${jumps} found)`);
    // `:name` creates the chain, or flushes it when it exists (iptables-restore --noflush).
    decls.push(`:${name} - [0:0]`);
    for (let i = 0; i < jumps; i++) deletes.push(`-D ${parent} -j ${name}`);
    adds.push(...want.map((r) => `-A ${name} ${r}`));
    inserts.push(`-I ${parent} ${pos} -j ${name}`);
  }
  const body = [...decls, ...deletes, ...drops, ...adds, ...inserts];
  return { text: body.length ? `*filter\n${body.join('\n')}\nCOMMIT\n` : '', problems, parents };
}

/**
 * Native nftables tables of other programs that drop as a side effect: Docker 29's `ip/ip6
 * docker-bridges`, whose base chain `filter-FORWARD` dockerd sets to policy drop when it had to switch
 * ip_forward on itself — that drops a guest's forwarded traffic whatever virtnet's own table accepts.
 * The layer inserts the network's forward accepts at the head of such a chain (hook `forward`, policy
 * drop), each with a comment `virtnet:<network>:<family>:<i>:<hash of the whole list>`, so that the
 * same plan is recognised (and a changed one replaced) without comparing rule expressions. An
 * admin's own table with a drop policy is a deliberate choice: left alone (`virtnetctl doctor`
 * reports it with the command to run). Chains that drop only in rules (Docker's per-bridge drops,
 * which never match a virtnet bridge) are not touched.
 */
export interface NftBaseChain {
  family: string;
  table: string;
  name: string;
  hook: string;
  policy: string;
  /** Position order; `comment` only when the rule has one. */
  rules: { handle: number; comment?: string }[];
}

/** The native nft tables of other programs the layer goes into. */
export const NFT_COMPAT_TABLES: ReadonlySet<string> = new Set(['docker-bridges']);

/** The base chains of `nft -j list ruleset` output, with their rules' handles and comments. */
export function parseNftBaseChains(json: string): NftBaseChain[] {
  const items = (JSON.parse(json) as { nftables?: Record<string, Record<string, unknown>>[] }).nftables ?? [];
  const chains = new Map<string, NftBaseChain>();
  const key = (f: unknown, t: unknown, c: unknown) => `${f}/${t}/${c}`;
  for (const it of items) {
    const c = it.chain;
    if (c && typeof c.hook === 'string')
      chains.set(key(c.family, c.table, c.name), {
        family: String(c.family),
        table: String(c.table),
        name: String(c.name),
        hook: c.hook,
        policy: String(c.policy ?? 'accept'),
        rules: [],
      });
    const r = it.rule;
    if (r) {
      const chain = chains.get(key(r.family, r.table, r.chain));
      if (chain)
        chain.rules.push({
          handle: Number(r.handle),
          ...(typeof r.comment === 'string' ? { comment: r.comment } : {}),
        });
    }
  }
  return [...chains.values()];
}

/** The accepts of the layer in a native nft forward chain (nft statements, in order). */
export function nftCompatRules(rs: FirewallRuleSet, family: FwFamily): string[] {
  const fam = family === 'ipv4' ? 'ip' : 'ip6';
  if (rs.mode === 'bridge') {
    if (!rs.bridge) return [];
    const br = assertIfname(rs.bridge);
    return [`iifname "${br}" oifname "${br}" counter accept`];
  }
  const out: string[] = [];
  for (const chain of ['forward-cross', 'forward-in', 'forward-out'] as const) {
    for (const r of chainRules(rs, family, chain)) {
      if (r.kind === 'forward-reject-in' || r.kind === 'forward-reject-out') continue;
      if (r.kind === 'forward-allow-related-in' && rs.mode === 'nat') {
        const phys = r.physdev ? `iifname "${assertIfname(r.physdev)}" ` : '';
        out.push(
          `${phys}oifname "${assertIfname(r.bridge)}" ${fam} daddr ${assertCidr(r.subnet, family)} ct status dnat counter accept`,
        );
      }
      const s = nftRule(r);
      if (s) out.push(s);
    }
  }
  return out;
}

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/**
 * What to run (one `nft -f -` text) so that every forward chain with policy drop of those tables
 * holds exactly the planned accepts of `network` for `family` at its head, and no other chain holds
 * any (`rs` undefined: none anywhere — the stop). `problems` says what was wrong, as renderCompat.
 */
export function renderNftCompat(
  network: string,
  rs: FirewallRuleSet | undefined,
  family: FwFamily,
  chains: NftBaseChain[],
): CompatPlan {
  const fam = family === 'ipv4' ? 'ip' : 'ip6';
  const tag = `virtnet:${network}:${fam}:`;
  const rules = rs ? nftCompatRules(rs, family) : [];
  const hash = fnv1a(rules.join('\n'));
  const comments = rules.map((_, i) => `${tag}${i}:${hash}`);
  const lines: string[] = [];
  const problems: string[] = [];
  const parents: CompatParent[] = [];
  for (const c of chains) {
    if (c.family !== fam || !NFT_COMPAT_TABLES.has(c.table)) continue;
    if (!/^[A-Za-z0-9_.-]+$/.test(c.name)) continue;
    const where = `${c.family} ${c.table} ${c.name}`;
    const ours = c.rules.filter((r) => r.comment?.startsWith(tag));
    const want = c.hook === 'forward' && c.policy === 'drop' && rules.length > 0;
    if (want) parents.push('FORWARD');
    const inPlace =
      want &&
      ours.length === rules.length &&
      c.rules.slice(0, rules.length).every((r, i) => r.comment === comments[i]);
    if (inPlace || (!want && ours.length === 0)) continue;
    if (!want) problems.push(`FORWARD: ${where} accepts no longer needed`);
    else if (ours.length === 0) problems.push(`FORWARD: ${where} accepts missing`);
    else
      problems.push(
        `FORWARD: ${where} accepts differ or not at the head (${ours.length} of ${rules.length})`,
      );
    for (const r of ours) lines.push(`delete rule ${where} handle ${r.handle}`);
    if (want)
      // `insert` without a position puts a rule first: insert the last one first.
      for (let i = rules.length - 1; i >= 0; i--)
        lines.push(`insert rule ${where} ${rules[i]} comment "${comments[i]}"`);
  }
  return { text: lines.length ? `${lines.join('\n')}\n` : '', problems, parents };
}
