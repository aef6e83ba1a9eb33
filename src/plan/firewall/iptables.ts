/**
 * Renders a network's rule set (rules.ts) as `iptables-restore --noflush` / `ip6tables-restore
 * --noflush` texts using chains of virtnet's own, one set per network.
 *
 * Chains (≤ 28 characters): `<stem>-INP`, `-OUT`, `-FWX`, `-FWI`, `-FWO` in filter, `<stem>-PRT` in
 * nat and in mangle, where the stem is `VN-<name, 12 chars sanitized>_<8 hex>` (safe.ts). Each chain
 * holds libvirt's rules of that role in libvirt's evaluation order and is hooked at the head of its
 * builtin chain exactly as libvirt hooks LIBVIRT_INP/OUT/FWX/FWI/FWO/PRT (FORWARD: cross, in, out).
 * Only chains that get rules are created. Rules are written in `iptables-save`'s own canonical form,
 * so that what the kernel reports back can be compared line by line.
 *
 * - `apply`: declares the chains (creates them, or flushes them if they exist), adds the rules, and
 *   inserts the jumps. Meant for a network whose chains are absent; after a crash use `replace`.
 * - `remove`: deletes the jumps, flushes and deletes the chains. Fails as a whole (changing nothing)
 *   if something it deletes is missing; each line also works on its own (`-D`, `-F`, `-X`).
 * - `renderIptablesReplace(rs, family, saved)`: given the current `iptables-save` output, one text
 *   that deletes every existing jump to this network's chains (duplicates included), drops chains no
 *   longer planned, and re-creates the planned ones — the idempotent re-apply for adoption.
 * - `iptablesRemoveFromSave(network, saved)`: removes whatever of this network the save shows.
 * A family without rules gets empty texts.
 *
 * virtnet extension (not in libvirt; `{ acceptDnat: false }` turns it off): in nat mode `-FWI`
 * first accepts DNATed connections into the subnet, as the nftables rendering does — see
 * `IptablesOptions`.
 */
import type { FirewallRule, FirewallRuleSet, FwChain, FwFamily, NatTarget } from './rules.js';
import { chainRules } from './rules.js';
import {
  assertChain,
  assertCidr,
  assertIfname,
  assertPort,
  FirewallRenderError,
  iptablesNetworkStem,
  portRangeText,
  snatToText,
} from './safe.js';

export interface IptablesFamilyScripts {
  apply: string;
  remove: string;
}

export interface IptablesScripts {
  v4: IptablesFamilyScripts;
  v6: IptablesFamilyScripts;
}

type Table = 'filter' | 'nat' | 'mangle';

interface ChainSpec {
  role: FwChain;
  table: Table;
  suffix: string;
  parent: string;
}

/** libvirt's hook order: within FORWARD, cross first, then in, then out. */
const CHAINS: readonly ChainSpec[] = [
  { role: 'host-input', table: 'filter', suffix: 'INP', parent: 'INPUT' },
  { role: 'host-output', table: 'filter', suffix: 'OUT', parent: 'OUTPUT' },
  { role: 'forward-cross', table: 'filter', suffix: 'FWX', parent: 'FORWARD' },
  { role: 'forward-in', table: 'filter', suffix: 'FWI', parent: 'FORWARD' },
  { role: 'forward-out', table: 'filter', suffix: 'FWO', parent: 'FORWARD' },
  { role: 'nat-postrouting', table: 'nat', suffix: 'PRT', parent: 'POSTROUTING' },
  { role: 'mangle-postrouting', table: 'mangle', suffix: 'PRT', parent: 'POSTROUTING' },
];

const TABLES: readonly Table[] = ['filter', 'nat', 'mangle'];

function natJump(family: FwFamily, target: NatTarget): string {
  if (target.type === 'masquerade') {
    return target.ports ? `-j MASQUERADE --to-ports ${portRangeText(target.ports)}` : '-j MASQUERADE';
  }
  return `-j SNAT --to-source ${snatToText(family, target)}`;
}

/** One rule in iptables-save form, without the leading `-A CHAIN`. */
export function iptablesRuleSpec(rule: FirewallRule): string {
  const f = rule.family;
  const reject = `-j REJECT --reject-with ${f === 'ipv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'}`;
  const i = (n: string) => `-i ${assertIfname(n)}`;
  const o = (n: string) => `-o ${assertIfname(n)}`;
  const physOut = 'physdev' in rule && rule.physdev ? ` ${o(rule.physdev)}` : '';
  const physIn = 'physdev' in rule && rule.physdev ? ` ${i(rule.physdev)}` : '';
  const proto = (p: string) => (p === 'tcp' ? 'tcp' : 'udp');
  switch (rule.kind) {
    case 'host-input':
      return `${i(rule.bridge)} -p ${proto(rule.proto)} -m ${proto(rule.proto)} --dport ${assertPort(rule.port)} -j ACCEPT`;
    case 'host-output':
      return `${o(rule.bridge)} -p ${proto(rule.proto)} -m ${proto(rule.proto)} --dport ${assertPort(rule.port)} -j ACCEPT`;
    case 'forward-reject-out':
      return `${i(rule.bridge)} ${reject}`;
    case 'forward-reject-in':
      return `${o(rule.bridge)} ${reject}`;
    case 'forward-allow-cross':
      return `${i(rule.bridge)} ${o(rule.bridge)} -j ACCEPT`;
    case 'forward-allow-out':
      return `-s ${assertCidr(rule.subnet, f)} ${i(rule.bridge)}${physOut} -j ACCEPT`;
    case 'forward-allow-related-in':
      return `-d ${assertCidr(rule.subnet, f)}${physIn} ${o(rule.bridge)} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`;
    case 'forward-allow-in':
      return `-d ${assertCidr(rule.subnet, f)}${physIn} ${o(rule.bridge)} -j ACCEPT`;
    case 'masquerade': {
      const net = assertCidr(rule.subnet, f);
      return `-s ${net} ! -d ${net}${physOut}${rule.proto ? ` -p ${proto(rule.proto)}` : ''} ${natJump(f, rule.target)}`;
    }
    case 'dont-masquerade':
      return `-s ${assertCidr(rule.subnet, f)} -d ${assertCidr(rule.destination, f)}${physOut} -j RETURN`;
    case 'checksum-fill':
      return `${o(rule.bridge)} -p udp -m udp --dport ${assertPort(rule.port)} -j CHECKSUM --checksum-fill`;
  }
}

function chainName(stem: string, spec: ChainSpec): string {
  return assertChain(`${stem}-${spec.suffix}`);
}

interface PlannedChain {
  spec: ChainSpec;
  name: string;
  rules: string[];
}

export interface IptablesOptions {
  /**
   * virtnet extension, as in nftables.ts: in nat mode the `-FWI` chain first accepts connections
   * the host destination-NATed into a subnet (`--ctstate DNAT`), so that per-domain port forwards
   * work whatever the order of the jumps in FORWARD (a network re-applied after a domain's forward
   * chain was hooked would otherwise shadow it). Default true; false gives libvirt's rules only.
   */
  acceptDnat?: boolean;
}

/** The DNAT accept of `acceptDnat`, in front of a nat network's related/established accept. */
function dnatAccept(rule: FirewallRule): string[] {
  if (rule.kind !== 'forward-allow-related-in') return [];
  const phys = rule.physdev ? ` -i ${assertIfname(rule.physdev)}` : '';
  return [
    `-d ${assertCidr(rule.subnet, rule.family)}${phys} -o ${assertIfname(rule.bridge)} -m conntrack --ctstate DNAT -j ACCEPT`,
  ];
}

function planned(rs: FirewallRuleSet, family: FwFamily, opts: IptablesOptions = {}): PlannedChain[] {
  const stem = iptablesNetworkStem(rs.network);
  const out: PlannedChain[] = [];
  for (const spec of CHAINS) {
    const inChain = chainRules(rs, family, spec.role);
    const extra =
      spec.role === 'forward-in' && rs.mode === 'nat' && opts.acceptDnat !== false
        ? inChain.flatMap(dnatAccept)
        : [];
    const rules = [...extra, ...inChain.map(iptablesRuleSpec)];
    if (rules.length > 0) out.push({ spec, name: chainName(stem, spec), rules });
  }
  return out;
}

/** `-I PARENT n -j CHAIN` lines: per parent, in CHAINS order, at positions 1, 2, … */
function jumpLines(chains: PlannedChain[]): string[] {
  const pos = new Map<string, number>();
  return chains.map((c) => {
    const n = (pos.get(c.spec.parent) ?? 0) + 1;
    pos.set(c.spec.parent, n);
    return `-I ${c.spec.parent} ${n} -j ${c.name}`;
  });
}

function section(table: Table, body: string[]): string {
  return body.length === 0 ? '' : `*${table}\n${body.join('\n')}\nCOMMIT\n`;
}

function applyText(chains: PlannedChain[]): string {
  return TABLES.map((table) => {
    const mine = chains.filter((c) => c.spec.table === table);
    return section(table, [
      ...mine.map((c) => `:${c.name} - [0:0]`),
      ...mine.flatMap((c) => c.rules.map((r) => `-A ${c.name} ${r}`)),
      ...jumpLines(mine),
    ]);
  }).join('');
}

function removeText(chains: PlannedChain[]): string {
  return TABLES.map((table) => {
    const mine = chains.filter((c) => c.spec.table === table);
    return section(table, [
      ...mine.map((c) => `-D ${c.spec.parent} -j ${c.name}`),
      ...mine.flatMap((c) => [`-F ${c.name}`, `-X ${c.name}`]),
    ]);
  }).join('');
}

export function renderIptables(rs: FirewallRuleSet, opts: IptablesOptions = {}): IptablesScripts {
  if (rs.rules.length > 0 && !rs.bridge) throw new FirewallRenderError('internal: rule set without a bridge');
  const one = (family: FwFamily): IptablesFamilyScripts => {
    const chains = planned(rs, family, opts);
    return { apply: applyText(chains), remove: removeText(chains) };
  };
  return { v4: one('ipv4'), v6: one('ipv6') };
}

/** What `iptables-save` shows of a network's chains: per table, the chains and the jumps to them. */
interface SavedState {
  chains: Map<Table, Set<string>>;
  jumps: Map<Table, { parent: string; chain: string }[]>;
}

function readSave(stem: string, saved: string): SavedState {
  const chains = new Map<Table, Set<string>>();
  const jumps = new Map<Table, { parent: string; chain: string }[]>();
  let table: Table | undefined;
  const mine = (name: string) => name.startsWith(`${stem}-`);
  for (const raw of saved.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      const t = line.slice(1);
      table = (TABLES as readonly string[]).includes(t) ? (t as Table) : undefined;
      continue;
    }
    if (!table) continue;
    const decl = /^:(\S+)\s/.exec(line);
    if (decl?.[1] && mine(decl[1])) {
      const set = chains.get(table) ?? new Set<string>();
      set.add(decl[1]);
      chains.set(table, set);
      continue;
    }
    const jump = /^-A (\S+) -j (\S+)$/.exec(line);
    if (jump?.[1] && jump[2] && mine(jump[2]) && !mine(jump[1])) {
      const list = jumps.get(table) ?? [];
      list.push({ parent: jump[1], chain: jump[2] });
      jumps.set(table, list);
    }
  }
  return { chains, jumps };
}

function reconcileText(stem: string, chains: PlannedChain[], saved: string): string {
  const state = readSave(stem, saved);
  return TABLES.map((table) => {
    const mine = chains.filter((c) => c.spec.table === table);
    const plannedNames = new Set(mine.map((c) => c.name));
    const obsolete = [...(state.chains.get(table) ?? [])].filter((n) => !plannedNames.has(n));
    for (const n of obsolete) assertChain(n);
    return section(table, [
      ...mine.map((c) => `:${c.name} - [0:0]`),
      ...(state.jumps.get(table) ?? []).map((j) => `-D ${assertChain(j.parent)} -j ${assertChain(j.chain)}`),
      ...obsolete.flatMap((n) => [`-F ${n}`, `-X ${n}`]),
      ...mine.flatMap((c) => c.rules.map((r) => `-A ${c.name} ${r}`)),
      ...jumpLines(mine),
    ]);
  }).join('');
}

/**
 * The idempotent re-apply: from the current `iptables-save` (or `ip6tables-save`) output of the
 * family, one restore text that leaves exactly the planned chains and one jump to each.
 */
export function renderIptablesReplace(
  rs: FirewallRuleSet,
  family: FwFamily,
  saved: string,
  opts: IptablesOptions = {},
): string {
  return reconcileText(iptablesNetworkStem(rs.network), planned(rs, family, opts), saved);
}

/** Removes whatever chains and jumps of `network` the saved state shows ('' when there are none). */
export function iptablesRemoveFromSave(network: string, saved: string): string {
  return reconcileText(iptablesNetworkStem(network), [], saved);
}
