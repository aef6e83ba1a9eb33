/**
 * Renders an abstract rule set as libvirt's own firewall command log — the argv libvirt would run for
 * the same network — so that the rule planner can be checked against libvirt's test data
 * (networkxml2firewalldata: `<case>-linux.args` / `.iptables` / `.nftables`). This is a conformance
 * instrument only; virtnet never runs these commands (it applies nftables.ts / iptables.ts output).
 *
 * Formats:
 * - 'iptables': libvirt's iptables backend (≤ 9.x, and ≥ 10 with firewall_backend=iptables): one
 *   `iptables`/`ip6tables -w --table T --insert LIBVIRT_xxx …` per rule, host rules and the mangle
 *   checksum rule included.
 * - 'nftables': libvirt ≥ 10's nftables backend: `nft -ae insert rule ip|ip6 libvirt_network
 *   guest_xxx …`; it has neither host input/output rules nor the checksum rule (libvirt dropped them:
 *   an accept in its own table cannot override anyone's reject, and nft has no CHECKSUM).
 *
 * Text layout (as in libvirt's test files): arguments are shell-escaped and joined with ` \` + newline
 * breaks; iptables logs break before every argument starting with '-', nft logs break before an
 * argument that starts with '-' or follows one that does not. One command per line group, each ending
 * with a newline.
 */
import type { FirewallRule, FirewallRuleSet, FwFamily, NatTarget } from '../../src/plan/firewall/rules.js';

export type LibvirtFormat = 'iptables' | 'nftables';

const IPT_CHAIN: Record<string, string> = {
  'host-input': 'LIBVIRT_INP',
  'host-output': 'LIBVIRT_OUT',
  'forward-out': 'LIBVIRT_FWO',
  'forward-in': 'LIBVIRT_FWI',
  'forward-cross': 'LIBVIRT_FWX',
};

function iptProg(family: FwFamily): string {
  return family === 'ipv4' ? 'iptables' : 'ip6tables';
}

function ipt(family: FwFamily, table: string, chain: string, args: string[]): string[] {
  return [iptProg(family), '-w', '--table', table, '--insert', chain, ...args];
}

function portRange(p: { start: number; end: number }): string {
  return `${p.start}-${p.end}`;
}

function iptNat(target: NatTarget): string[] {
  if (target.type === 'snat') {
    const range = target.addressEnd ? `${target.addressStart}-${target.addressEnd}` : target.addressStart;
    return ['--jump', 'SNAT', '--to-source', target.ports ? `${range}:${portRange(target.ports)}` : range];
  }
  return target.ports
    ? ['--jump', 'MASQUERADE', '--to-ports', portRange(target.ports)]
    : ['--jump', 'MASQUERADE'];
}

/** One rule as libvirt's iptables backend argv. */
export function iptablesArgv(rule: FirewallRule): string[] {
  const f = rule.family;
  switch (rule.kind) {
    case 'host-input':
      return ipt(f, 'filter', 'LIBVIRT_INP', [
        '--in-interface',
        rule.bridge,
        '--protocol',
        rule.proto,
        '--destination-port',
        String(rule.port),
        '--jump',
        'ACCEPT',
      ]);
    case 'host-output':
      return ipt(f, 'filter', 'LIBVIRT_OUT', [
        '--out-interface',
        rule.bridge,
        '--protocol',
        rule.proto,
        '--destination-port',
        String(rule.port),
        '--jump',
        'ACCEPT',
      ]);
    case 'forward-reject-out':
      return ipt(f, 'filter', 'LIBVIRT_FWO', ['--in-interface', rule.bridge, '--jump', 'REJECT']);
    case 'forward-reject-in':
      return ipt(f, 'filter', 'LIBVIRT_FWI', ['--out-interface', rule.bridge, '--jump', 'REJECT']);
    case 'forward-allow-cross':
      return ipt(f, 'filter', 'LIBVIRT_FWX', [
        '--in-interface',
        rule.bridge,
        '--out-interface',
        rule.bridge,
        '--jump',
        'ACCEPT',
      ]);
    case 'forward-allow-out':
      return ipt(f, 'filter', 'LIBVIRT_FWO', [
        '--source',
        rule.subnet,
        '--in-interface',
        rule.bridge,
        ...(rule.physdev ? ['--out-interface', rule.physdev] : []),
        '--jump',
        'ACCEPT',
      ]);
    case 'forward-allow-related-in':
      return ipt(f, 'filter', 'LIBVIRT_FWI', [
        '--destination',
        rule.subnet,
        ...(rule.physdev ? ['--in-interface', rule.physdev] : []),
        '--out-interface',
        rule.bridge,
        '--match',
        'conntrack',
        '--ctstate',
        'ESTABLISHED,RELATED',
        '--jump',
        'ACCEPT',
      ]);
    case 'forward-allow-in':
      return ipt(f, 'filter', 'LIBVIRT_FWI', [
        '--destination',
        rule.subnet,
        ...(rule.physdev ? ['--in-interface', rule.physdev] : []),
        '--out-interface',
        rule.bridge,
        '--jump',
        'ACCEPT',
      ]);
    case 'masquerade':
      return ipt(f, 'nat', 'LIBVIRT_PRT', [
        '--source',
        rule.subnet,
        ...(rule.proto ? ['-p', rule.proto] : []),
        '!',
        '--destination',
        rule.subnet,
        ...(rule.physdev ? ['--out-interface', rule.physdev] : []),
        ...iptNat(rule.target),
      ]);
    case 'dont-masquerade':
      return ipt(f, 'nat', 'LIBVIRT_PRT', [
        ...(rule.physdev ? ['--out-interface', rule.physdev] : []),
        '--source',
        rule.subnet,
        '--destination',
        rule.destination,
        '--jump',
        'RETURN',
      ]);
    case 'checksum-fill':
      return ipt(f, 'mangle', 'LIBVIRT_PRT', [
        '--out-interface',
        rule.bridge,
        '--protocol',
        'udp',
        '--destination-port',
        String(rule.port),
        '--jump',
        'CHECKSUM',
        '--checksum-fill',
      ]);
  }
}

const NFT_TABLE = 'libvirt_network';

function nftFam(family: FwFamily): string {
  return family === 'ipv4' ? 'ip' : 'ip6';
}

function nftInsert(family: FwFamily, chain: string, args: string[]): string[] {
  return ['nft', '-ae', 'insert', 'rule', nftFam(family), NFT_TABLE, chain, ...args];
}

function nftNat(target: NatTarget): string[] {
  const ports = target.ports ? `:${portRange(target.ports)}` : '';
  if (target.type === 'snat') {
    const range = target.addressEnd ? `${target.addressStart}-${target.addressEnd}` : target.addressStart;
    return ['counter', 'snat', 'to', `${range}${ports}`];
  }
  return ports ? ['counter', 'masquerade', 'to', ports] : ['counter', 'masquerade'];
}

/** One rule as libvirt ≥ 10's nft backend argv; undefined for rules that backend does not install. */
export function nftablesArgv(rule: FirewallRule): string[] | undefined {
  const f = rule.family;
  const fam = nftFam(f);
  switch (rule.kind) {
    case 'host-input':
    case 'host-output':
    case 'checksum-fill':
      return undefined;
    case 'forward-reject-out':
      return nftInsert(f, 'guest_output', ['iif', rule.bridge, 'counter', 'reject']);
    case 'forward-reject-in':
      return nftInsert(f, 'guest_input', ['oif', rule.bridge, 'counter', 'reject']);
    case 'forward-allow-cross':
      return nftInsert(f, 'guest_cross', ['iif', rule.bridge, 'oif', rule.bridge, 'counter', 'accept']);
    case 'forward-allow-out':
      return nftInsert(f, 'guest_output', [
        fam,
        'saddr',
        rule.subnet,
        'iif',
        rule.bridge,
        ...(rule.physdev ? ['oifname', rule.physdev] : []),
        'counter',
        'accept',
      ]);
    case 'forward-allow-related-in':
      return nftInsert(f, 'guest_input', [
        ...(rule.physdev ? ['iifname', rule.physdev] : []),
        'oif',
        rule.bridge,
        fam,
        'daddr',
        rule.subnet,
        'ct',
        'state',
        'related,established',
        'counter',
        'accept',
      ]);
    case 'forward-allow-in':
      return nftInsert(f, 'guest_input', [
        fam,
        'daddr',
        rule.subnet,
        ...(rule.physdev ? ['iifname', rule.physdev] : []),
        'oif',
        rule.bridge,
        'counter',
        'accept',
      ]);
    case 'masquerade':
      return nftInsert(f, 'guest_nat', [
        ...(rule.proto ? ['meta', 'l4proto', rule.proto] : []),
        fam,
        'saddr',
        rule.subnet,
        fam,
        'daddr',
        '!=',
        rule.subnet,
        ...(rule.physdev ? ['oifname', rule.physdev] : []),
        ...nftNat(rule.target),
      ]);
    case 'dont-masquerade':
      return nftInsert(f, 'guest_nat', [
        ...(rule.physdev ? ['oifname', rule.physdev] : []),
        fam,
        'saddr',
        rule.subnet,
        fam,
        'daddr',
        rule.destination,
        'counter',
        'return',
      ]);
  }
}

/** The commands libvirt runs once to create its global chains/tables (the `base.*` prefix). */
export function libvirtBaseArgv(format: LibvirtFormat): string[][] {
  const out: string[][] = [];
  if (format === 'iptables') {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const p = iptProg(family);
      for (const table of ['filter', 'nat', 'mangle']) out.push([p, '-w', '--table', table, '--list-rules']);
      const hook = (table: string, parent: string, child: string) => {
        out.push([p, '-w', '--table', table, '--new-chain', child]);
        out.push([p, '-w', '--table', table, '--insert', parent, '--jump', child]);
      };
      hook('filter', 'INPUT', IPT_CHAIN['host-input']!);
      hook('filter', 'OUTPUT', IPT_CHAIN['host-output']!);
      hook('filter', 'FORWARD', IPT_CHAIN['forward-out']!);
      hook('filter', 'FORWARD', IPT_CHAIN['forward-in']!);
      hook('filter', 'FORWARD', IPT_CHAIN['forward-cross']!);
      hook('nat', 'POSTROUTING', 'LIBVIRT_PRT');
      hook('mangle', 'POSTROUTING', 'LIBVIRT_PRT');
    }
    return out;
  }
  for (const family of ['ipv4', 'ipv6'] as const) {
    const fam = nftFam(family);
    out.push(['nft', 'list', 'table', fam, NFT_TABLE]);
    out.push(['nft', 'add', 'table', fam, NFT_TABLE]);
    out.push([
      'nft',
      'add',
      'chain',
      fam,
      NFT_TABLE,
      'forward',
      '{ type filter hook forward priority 0; policy accept; }',
    ]);
    for (const chain of ['guest_output', 'guest_input', 'guest_cross']) {
      out.push(['nft', 'add', 'chain', fam, NFT_TABLE, chain]);
      out.push(['nft', 'insert', 'rule', fam, NFT_TABLE, 'forward', 'counter', 'jump', chain]);
    }
    out.push([
      'nft',
      'add',
      'chain',
      fam,
      NFT_TABLE,
      'guest_nat',
      '{ type nat hook postrouting priority 100; policy accept; }',
    ]);
  }
  return out;
}

/** The argv list libvirt runs to add the rule set (without the base prefix). */
export function libvirtArgv(rs: FirewallRuleSet, format: LibvirtFormat): string[][] {
  const out: string[][] = [];
  for (const rule of rs.rules) {
    const argv = format === 'iptables' ? iptablesArgv(rule) : nftablesArgv(rule);
    if (argv) out.push(argv);
  }
  return out;
}

/** Characters after which libvirt's virBufferEscapeShell quotes an argument. */
const SHELL_SPECIAL = /[\s!"#$&'()*;<>?[\\\]^`{|}~]/;

export function shellEscape(arg: string): string {
  if (arg !== '' && !SHELL_SPECIAL.test(arg)) return arg;
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

/** One command as libvirt's test files show it. */
export function formatCommand(argv: readonly string[], format: LibvirtFormat): string {
  let text = '';
  let prevOpt = false;
  argv.forEach((arg, i) => {
    const isOpt = arg.startsWith('-');
    if (i > 0) {
      const lineBreak = format === 'iptables' ? isOpt : isOpt || !prevOpt;
      text += lineBreak ? ' \\\n' : ' ';
    }
    text += shellEscape(arg);
    prevOpt = isOpt;
  });
  return `${text}\n`;
}

/**
 * The rule set as libvirt's command log text. With `includeBase`, prefixed by the global setup that
 * the first network emits (what libvirt's test strips as `base.*`).
 */
export function renderLibvirtArgs(
  rs: FirewallRuleSet,
  format: LibvirtFormat,
  opts: { includeBase?: boolean } = {},
): string {
  const cmds = [...(opts.includeBase ? libvirtBaseArgv(format) : []), ...libvirtArgv(rs, format)];
  return cmds.map((argv) => formatCommand(argv, format)).join('');
}
