/**
 * Renders a network's rule set (rules.ts) as `nft -f -` scripts for virtnet's own tables.
 *
 * Layout: per network and family one table, `table ip virtnet_<id>` / `table ip6 virtnet_<id>`
 * (id: safe.ts `nameId`), holding libvirt's structure: a base chain `forward` (filter, priority 0)
 * that jumps to `guest_cross`, `guest_input`, `guest_output` in libvirt's evaluation order, and a
 * base chain `guest_nat` (nat postrouting, priority 100) when there is anything to masquerade.
 * Interfaces are matched by name (`iifname`/`oifname`): `iif` refuses to load while the bridge does
 * not exist yet. Host input/output accepts and the DHCP checksum rule are not rendered, exactly as in
 * libvirt ≥ 10's nftables backend: an `accept` in a table of our own never overrides another table's
 * drop, and nftables has no CHECKSUM statement.
 *
 * virtnet extension (documented, not in libvirt): in nat mode `guest_input` first accepts
 * connections the host itself destination-NATed into the subnet (`ct status dnat`). In nftables an
 * `accept` only ends the base chain it is in — every other base chain on the hook still sees the
 * packet — so a per-domain port-forward table cannot get past this table's reject by itself; this rule
 * is what lets the port forwards of portforward.ts through. Disable with `{ acceptDnat: false }`.
 *
 * `apply` replaces whatever virtnet had for this network atomically: it (re)creates both families'
 * tables empty, deletes them, then defines the planned ones — one transaction, fine whether or not
 * the tables existed, and a family that no longer has rules is left without a table. `remove` deletes
 * the planned tables and fails (as one transaction, changing nothing) if one of them is missing, so
 * `nft -c -f` of it tells whether the network's tables are present.
 */
import type { FirewallRule, FirewallRuleSet, FwChain, FwFamily, NatTarget } from './rules.js';
import { chainRules, FORWARD_CHAIN_ORDER, familiesOf } from './rules.js';
import {
  assertCidr,
  assertIfname,
  FirewallRenderError,
  nftNetworkTable,
  portRangeText,
  snatToText,
} from './safe.js';

/** One `nft -f -` script each way (apply replaces whatever the network has; remove deletes it). */
export interface NftScripts {
  apply: string;
  remove: string;
  /**
   * The first try of an apply: `create table` for each of the network's tables (fails with "File
   * exists" when one is already there) plus their definitions, with no `delete table` in the
   * transaction — a deletion costs the kernel an RCU grace period at commit, longer than the whole
   * fresh transaction (README, Numbers). On failure the driver runs `apply`, which
   * replaces whatever is there. Absent in states written before it existed (then `apply` runs).
   */
  create?: string;
}

export interface NftOptions {
  /** Accept DNATed connections into a nat network's subnets (see the module comment). Default true. */
  acceptDnat?: boolean;
}

const NFT_CHAIN: Partial<Record<FwChain, string>> = {
  'forward-cross': 'guest_cross',
  'forward-in': 'guest_input',
  'forward-out': 'guest_output',
};

export function nftFamily(family: FwFamily): 'ip' | 'ip6' {
  return family === 'ipv4' ? 'ip' : 'ip6';
}

function q(ifname: string): string {
  return `"${assertIfname(ifname)}"`;
}

function natStatement(family: FwFamily, target: NatTarget): string {
  if (target.type === 'masquerade')
    return target.ports ? `masquerade to :${portRangeText(target.ports)}` : 'masquerade';
  return `snat to ${snatToText(family, target)}`;
}

/** One rule as an nft rule statement (inside its chain), or undefined when nft does not carry it. */
export function nftRule(rule: FirewallRule): string | undefined {
  const fam = nftFamily(rule.family);
  const phys = (dir: 'iifname' | 'oifname') =>
    'physdev' in rule && rule.physdev ? `${dir} ${q(rule.physdev)} ` : '';
  switch (rule.kind) {
    case 'host-input':
    case 'host-output':
    case 'checksum-fill':
      return undefined;
    case 'forward-reject-out':
      return `iifname ${q(rule.bridge)} counter reject`;
    case 'forward-reject-in':
      return `oifname ${q(rule.bridge)} counter reject`;
    case 'forward-allow-cross':
      return `iifname ${q(rule.bridge)} oifname ${q(rule.bridge)} counter accept`;
    case 'forward-allow-out':
      return `iifname ${q(rule.bridge)} ${phys('oifname')}${fam} saddr ${assertCidr(rule.subnet, rule.family)} counter accept`;
    case 'forward-allow-related-in':
      return `${phys('iifname')}oifname ${q(rule.bridge)} ${fam} daddr ${assertCidr(rule.subnet, rule.family)} ct state related,established counter accept`;
    case 'forward-allow-in':
      return `${phys('iifname')}oifname ${q(rule.bridge)} ${fam} daddr ${assertCidr(rule.subnet, rule.family)} counter accept`;
    case 'masquerade': {
      const net = assertCidr(rule.subnet, rule.family);
      const proto = rule.proto ? `meta l4proto ${rule.proto === 'tcp' ? 'tcp' : 'udp'} ` : '';
      return `${proto}${fam} saddr ${net} ${fam} daddr != ${net} ${phys('oifname')}counter ${natStatement(rule.family, rule.target)}`;
    }
    case 'dont-masquerade':
      return `${phys('oifname')}${fam} saddr ${assertCidr(rule.subnet, rule.family)} ${fam} daddr ${assertCidr(rule.destination, rule.family)} counter return`;
  }
}

function familyTable(rs: FirewallRuleSet, family: FwFamily, table: string, opts: NftOptions): string {
  const fam = nftFamily(family);
  const lines: string[] = [`table ${fam} ${table} {`];
  lines.push('\tchain forward {', '\t\ttype filter hook forward priority 0; policy accept;');
  for (const chain of FORWARD_CHAIN_ORDER) lines.push(`\t\tcounter jump ${NFT_CHAIN[chain]}`);
  lines.push('\t}');
  for (const chain of FORWARD_CHAIN_ORDER) {
    lines.push(`\tchain ${NFT_CHAIN[chain]} {`);
    if (chain === 'forward-in' && rs.mode === 'nat' && opts.acceptDnat !== false) {
      for (const r of chainRules(rs, family, 'forward-in')) {
        if (r.kind === 'forward-allow-related-in') {
          lines.push(
            `\t\t${r.physdev ? `iifname ${q(r.physdev)} ` : ''}oifname ${q(r.bridge)} ${fam} daddr ${assertCidr(r.subnet, family)} ct status dnat counter accept`,
          );
        }
      }
    }
    for (const r of chainRules(rs, family, chain)) {
      const text = nftRule(r);
      if (text) lines.push(`\t\t${text}`);
    }
    lines.push('\t}');
  }
  const nat = chainRules(rs, family, 'nat-postrouting');
  if (nat.length > 0) {
    lines.push('\tchain guest_nat {', '\t\ttype nat hook postrouting priority 100; policy accept;');
    for (const r of nat) lines.push(`\t\t${nftRule(r)}`);
    lines.push('\t}');
  }
  lines.push('}');
  return lines.join('\n');
}

/** Whether the family has anything nft carries (host rules and checksum alone do not count). */
function nftFamilies(rs: FirewallRuleSet): FwFamily[] {
  return familiesOf(rs).filter((f) => rs.rules.some((r) => r.family === f && nftRule(r) !== undefined));
}

export function renderNftables(rs: FirewallRuleSet, opts: NftOptions = {}): NftScripts {
  const table = nftNetworkTable(rs.network);
  if (rs.rules.length > 0 && !rs.bridge) throw new FirewallRenderError('internal: rule set without a bridge');
  const families = nftFamilies(rs);
  const reset: string[] = [];
  for (const f of ['ipv4', 'ipv6'] as const) {
    reset.push(`table ${nftFamily(f)} ${table}`, `delete table ${nftFamily(f)} ${table}`);
  }
  const defs = families.map((f) => familyTable(rs, f, table, opts));
  const apply = `${[...reset, ...defs].join('\n')}\n`;
  const remove = families.map((f) => `delete table ${nftFamily(f)} ${table}\n`).join('');
  if (!families.length) return { apply, remove };
  const create = `${[...families.map((f) => `create table ${nftFamily(f)} ${table}`), ...defs].join('\n')}\n`;
  return { apply, remove, create };
}

/** A script that removes every table virtnet may have for `network`, whether or not they exist. */
export function nftRemoveAnyScript(network: string): string {
  const table = nftNetworkTable(network);
  return ['ip', 'ip6'].map((fam) => `table ${fam} ${table}\ndelete table ${fam} ${table}\n`).join('');
}
