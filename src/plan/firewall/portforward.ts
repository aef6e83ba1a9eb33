/**
 * Per-domain inbound port forwards, planned as data and rendered for both backends, each
 * domain (on one network) in its OWN nft table / iptables chains, so starting or stopping a domain
 * toggles exactly its forwards in one transaction.
 *
 * For each forward `proto hostPort → guestIp:guestPort`:
 * - DNAT in prerouting (connections from outside) and in output (connections from the host itself),
 *   for packets addressed to `hostAddress`, or to any local address of the host when none is given
 *   (IPv6: except ::1, which the kernel cannot send to a guest);
 * - forward accept of the DNATed connection into the bridge, ahead of the network's reject rules:
 *   iptables — a chain of the domain hooked at the head of FORWARD (an ACCEPT there is final for the
 *   filter table). nftables has no such thing: an `accept` only ends its own base chain and every
 *   other base chain on the hook still judges the packet, so a domain table cannot override a
 *   network table's `reject`. virtnet's own nat networks accept DNATed connections instead (see
 *   nftables.ts `acceptDnat`), and the nft rendering here carries no forward chain;
 * - masquerade of hairpin connections: from the network's own subnets (a guest reaching another guest
 *   through the host's address; needs `subnets`) and, for IPv4, from 127.0.0.0/8 (the host connecting
 *   to 127.0.0.1:hostPort — this also needs `net.ipv4.conf.<bridge>.route_localnet=1`, listed in
 *   `sysctls` for the engine to set).
 */
import { type Problem, ValidationError } from '../../errors.js';
import { canonicalIp, cidr, parseIp } from '../../model/ip.js';
import type { IpFamily } from '../../model/network.js';
import type { L4Proto, PortForwardTarget } from '../../model/values.js';
import {
  assertChain,
  assertCidr,
  assertIfname,
  assertIp,
  assertPort,
  iptablesPortForwardStem,
  nftPortForwardTable,
  unsafeIfname,
} from './safe.js';

export interface PortForwardInput {
  network: string;
  bridge: string;
  domain: string;
  forwards: PortForwardTarget[];
  /** The network's subnets (CIDR or address/prefix): hairpin masquerade for guests using a forward. */
  subnets?: string[];
}

export type PortForwardRule =
  | {
      kind: 'dnat';
      hook: 'prerouting' | 'output';
      family: IpFamily;
      proto: L4Proto;
      hostPort: number;
      hostAddress?: string;
      guestIp: string;
      guestPort: number;
    }
  | {
      kind: 'forward-accept';
      family: IpFamily;
      bridge: string;
      proto: L4Proto;
      guestIp: string;
      guestPort: number;
    }
  | {
      kind: 'hairpin-masquerade';
      family: IpFamily;
      source: string;
      proto: L4Proto;
      guestIp: string;
      guestPort: number;
    };

export interface PortForwardRuleSet {
  network: string;
  domain: string;
  bridge: string;
  /** Evaluation order within each hook. */
  rules: PortForwardRule[];
  /** sysctls the forwards need (key → value), for the engine to set. */
  sysctls: Record<string, string>;
}

const LOOPBACK_V4 = '127.0.0.0/8';

function validPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Plan a domain's forwards. Throws ValidationError naming `forwards[i].<field>` for bad input. */
export function planPortForwards(input: PortForwardInput): PortForwardRuleSet {
  const problems: Problem[] = [];
  const add = (path: string, value: unknown, reason: string) =>
    problems.push({ path, value: value === undefined ? undefined : String(value), reason });
  const bridgeWhy = unsafeIfname(input.bridge);
  if (bridgeWhy) add('bridge', input.bridge, bridgeWhy);

  const normalized: PortForwardTarget[] = [];
  const seen = new Set<string>();
  input.forwards.forEach((f, i) => {
    const p = `forwards[${i}]`;
    if (f.proto !== 'tcp' && f.proto !== 'udp') add(`${p}.proto`, f.proto, "protocol must be 'tcp' or 'udp'");
    if (f.family !== 'ipv4' && f.family !== 'ipv6')
      add(`${p}.family`, f.family, "family must be 'ipv4' or 'ipv6'");
    if (!validPort(f.hostPort)) add(`${p}.hostPort`, f.hostPort, 'port must be an integer 1..65535');
    if (!validPort(f.guestPort)) add(`${p}.guestPort`, f.guestPort, 'port must be an integer 1..65535');
    const guest = typeof f.guestIp === 'string' ? parseIp(f.guestIp) : undefined;
    if (!guest || guest.family !== f.family) add(`${p}.guestIp`, f.guestIp, `not an ${f.family} address`);
    let hostAddress: string | undefined;
    if (f.hostAddress !== undefined) {
      const h = typeof f.hostAddress === 'string' ? parseIp(f.hostAddress) : undefined;
      if (!h || h.family !== f.family) add(`${p}.hostAddress`, f.hostAddress, `not an ${f.family} address`);
      else hostAddress = canonicalIp(f.hostAddress);
    }
    const key = `${f.family}/${f.proto}/${hostAddress ?? '*'}/${f.hostPort}`;
    if (seen.has(key)) add(`${p}.hostPort`, f.hostPort, 'the same host port is forwarded twice');
    seen.add(key);
    if (guest) {
      normalized.push({
        ...f,
        guestIp: canonicalIp(f.guestIp)!,
        ...(hostAddress ? { hostAddress } : {}),
      });
    }
  });

  const subnets: string[] = [];
  (input.subnets ?? []).forEach((s, i) => {
    const m = typeof s === 'string' ? /^([^/]+)\/(\d{1,3})$/.exec(s) : null;
    const a = m?.[1] ? parseIp(m[1]) : undefined;
    const prefix = Number(m?.[2]);
    if (!m || !a || prefix > (a.family === 'ipv4' ? 32 : 128))
      add(`subnets[${i}]`, s, 'not an address/prefix');
    else subnets.push(cidr(m[1]!, prefix));
  });
  if (problems.length > 0) throw new ValidationError(problems);

  const rules: PortForwardRule[] = [];
  for (const hook of ['prerouting', 'output'] as const) {
    for (const f of normalized) {
      rules.push({
        kind: 'dnat',
        hook,
        family: f.family,
        proto: f.proto,
        hostPort: f.hostPort,
        ...(f.hostAddress ? { hostAddress: f.hostAddress } : {}),
        guestIp: f.guestIp,
        guestPort: f.guestPort,
      });
    }
  }
  for (const f of normalized) {
    rules.push({
      kind: 'forward-accept',
      family: f.family,
      bridge: input.bridge,
      proto: f.proto,
      guestIp: f.guestIp,
      guestPort: f.guestPort,
    });
  }
  let loopback = false;
  for (const f of normalized) {
    for (const s of subnets.filter((n) => parseIp(n.split('/')[0]!)?.family === f.family)) {
      rules.push({
        kind: 'hairpin-masquerade',
        family: f.family,
        source: s,
        proto: f.proto,
        guestIp: f.guestIp,
        guestPort: f.guestPort,
      });
    }
    if (f.family === 'ipv4' && (f.hostAddress === undefined || f.hostAddress.startsWith('127.'))) {
      loopback = true;
      rules.push({
        kind: 'hairpin-masquerade',
        family: 'ipv4',
        source: LOOPBACK_V4,
        proto: f.proto,
        guestIp: f.guestIp,
        guestPort: f.guestPort,
      });
    }
  }
  const sysctls: Record<string, string> = loopback
    ? { [`net.ipv4.conf.${input.bridge}.route_localnet`]: '1' }
    : {};
  return { network: input.network, domain: input.domain, bridge: input.bridge, rules, sysctls };
}

// ---------------------------------------------------------------- rendering

export interface PortForwardNftScripts {
  /** Replaces whatever the domain has (idempotent): its tables are deleted and made again. */
  apply: string;
  remove: string;
  /**
   * The same rules for a domain that has none installed: `create table` fails (the transaction as a
   * whole) when a table exists, and nothing is deleted — deleting a table with base chains makes the
   * kernel wait for an RCU grace period, so a first install this way is several times faster
   * (README, Numbers). Empty when there is nothing to install. Callers fall back to `apply` when it fails.
   */
  create: string;
}

function nftFam(f: IpFamily): 'ip' | 'ip6' {
  return f === 'ipv4' ? 'ip' : 'ip6';
}

function hostPortText(family: IpFamily, addr: string, port: number): string {
  assertIp(addr, family);
  assertPort(port);
  return family === 'ipv6' ? `[${addr}]:${port}` : `${addr}:${port}`;
}

function proto(p: L4Proto): L4Proto {
  return p === 'tcp' ? 'tcp' : 'udp';
}

function nftDnat(r: Extract<PortForwardRule, { kind: 'dnat' }>): string {
  const fam = nftFam(r.family);
  const dst = r.hostAddress ? `${fam} daddr ${assertIp(r.hostAddress, r.family)}` : 'fib daddr type local';
  const notLoop = r.hook === 'output' && r.family === 'ipv6' && !r.hostAddress ? 'ip6 daddr != ::1 ' : '';
  return `${notLoop}${dst} ${proto(r.proto)} dport ${assertPort(r.hostPort)} counter dnat to ${hostPortText(r.family, r.guestIp, r.guestPort)}`;
}

function nftHairpin(r: Extract<PortForwardRule, { kind: 'hairpin-masquerade' }>): string {
  const fam = nftFam(r.family);
  return `${fam} saddr ${assertCidr(r.source, r.family)} ${fam} daddr ${assertIp(r.guestIp, r.family)} ${proto(r.proto)} dport ${assertPort(r.guestPort)} ct status dnat counter masquerade`;
}

const pfFamilies = (rs: PortForwardRuleSet): IpFamily[] =>
  (['ipv4', 'ipv6'] as const).filter((f) => rs.rules.some((r) => r.family === f));

/**
 * nft scripts: `apply` replaces the domain's tables atomically (fine whether or not they exist);
 * `remove` deletes them and fails, changing nothing, when one is missing.
 */
export function renderPortForwardsNftables(rs: PortForwardRuleSet): PortForwardNftScripts {
  assertIfname(rs.bridge);
  const table = nftPortForwardTable(rs.network, rs.domain);
  const lines: string[] = [];
  for (const fam of ['ip', 'ip6']) lines.push(`table ${fam} ${table}`, `delete table ${fam} ${table}`);
  const families = pfFamilies(rs);
  const preamble = lines.length;
  for (const family of families) {
    const mine = rs.rules.filter((r) => r.family === family);
    lines.push(`table ${nftFam(family)} ${table} {`);
    for (const hook of ['prerouting', 'output'] as const) {
      lines.push(`\tchain ${hook} {`, `\t\ttype nat hook ${hook} priority -100; policy accept;`);
      for (const r of mine) if (r.kind === 'dnat' && r.hook === hook) lines.push(`\t\t${nftDnat(r)}`);
      lines.push('\t}');
    }
    const hairpins = mine.filter((r) => r.kind === 'hairpin-masquerade');
    if (hairpins.length > 0) {
      lines.push('\tchain postrouting {', '\t\ttype nat hook postrouting priority 99; policy accept;');
      for (const r of hairpins) if (r.kind === 'hairpin-masquerade') lines.push(`\t\t${nftHairpin(r)}`);
      lines.push('\t}');
    }
    lines.push('}');
  }
  const tables = lines.slice(preamble);
  return {
    apply: `${lines.join('\n')}\n`,
    remove: families.map((f) => `delete table ${nftFam(f)} ${table}\n`).join(''),
    create: families.length
      ? `${[...families.map((f) => `create table ${nftFam(f)} ${table}`), ...tables].join('\n')}\n`
      : '',
  };
}

export interface PortForwardIptablesScripts {
  v4: { apply: string; remove: string };
  v6: { apply: string; remove: string };
}

function iptHost(family: IpFamily, addr: string): string {
  return `${assertIp(addr, family)}/${family === 'ipv4' ? 32 : 128}`;
}

function iptDnat(r: Extract<PortForwardRule, { kind: 'dnat' }>): string {
  const p = proto(r.proto);
  const dst = r.hostAddress
    ? `-d ${iptHost(r.family, r.hostAddress)} -p ${p}`
    : `${r.hook === 'output' && r.family === 'ipv6' ? '! -d ::1/128 ' : ''}-p ${p} -m addrtype --dst-type LOCAL`;
  return `${dst} -m ${p} --dport ${assertPort(r.hostPort)} -j DNAT --to-destination ${hostPortText(r.family, r.guestIp, r.guestPort)}`;
}

function iptForward(r: Extract<PortForwardRule, { kind: 'forward-accept' }>): string {
  const p = proto(r.proto);
  return `-d ${iptHost(r.family, r.guestIp)} -o ${assertIfname(r.bridge)} -p ${p} -m ${p} --dport ${assertPort(r.guestPort)} -m conntrack --ctstate DNAT -j ACCEPT`;
}

function iptHairpin(r: Extract<PortForwardRule, { kind: 'hairpin-masquerade' }>): string {
  const p = proto(r.proto);
  return `-s ${assertCidr(r.source, r.family)} -d ${iptHost(r.family, r.guestIp)} -p ${p} -m ${p} --dport ${assertPort(r.guestPort)} -m conntrack --ctstate DNAT -j MASQUERADE`;
}

/**
 * iptables-restore texts per family: chains `<stem>-PRE` (nat PREROUTING), `-OUT` (nat OUTPUT),
 * `-PST` (nat POSTROUTING), `-FWD` (filter FORWARD), each hooked at position 1 of its builtin chain.
 */
export function renderPortForwardsIptables(rs: PortForwardRuleSet): PortForwardIptablesScripts {
  const stem = iptablesPortForwardStem(rs.network, rs.domain);
  const one = (family: IpFamily) => {
    const mine = rs.rules.filter((r) => r.family === family);
    if (mine.length === 0) return { apply: '', remove: '' };
    const chains: { table: 'nat' | 'filter'; name: string; parent: string; rules: string[] }[] = [
      {
        table: 'nat',
        name: assertChain(`${stem}-PRE`),
        parent: 'PREROUTING',
        rules: mine.flatMap((r) => (r.kind === 'dnat' && r.hook === 'prerouting' ? [iptDnat(r)] : [])),
      },
      {
        table: 'nat',
        name: assertChain(`${stem}-OUT`),
        parent: 'OUTPUT',
        rules: mine.flatMap((r) => (r.kind === 'dnat' && r.hook === 'output' ? [iptDnat(r)] : [])),
      },
      {
        table: 'nat',
        name: assertChain(`${stem}-PST`),
        parent: 'POSTROUTING',
        rules: mine.flatMap((r) => (r.kind === 'hairpin-masquerade' ? [iptHairpin(r)] : [])),
      },
      {
        table: 'filter',
        name: assertChain(`${stem}-FWD`),
        parent: 'FORWARD',
        rules: mine.flatMap((r) => (r.kind === 'forward-accept' ? [iptForward(r)] : [])),
      },
    ].filter((c) => c.rules.length > 0) as {
      table: 'nat' | 'filter';
      name: string;
      parent: string;
      rules: string[];
    }[];
    const section = (table: string, body: string[]) =>
      body.length ? `*${table}\n${body.join('\n')}\nCOMMIT\n` : '';
    const apply = (['filter', 'nat'] as const)
      .map((t) => {
        const cs = chains.filter((c) => c.table === t);
        return section(t, [
          ...cs.map((c) => `:${c.name} - [0:0]`),
          ...cs.flatMap((c) => c.rules.map((r) => `-A ${c.name} ${r}`)),
          ...cs.map((c) => `-I ${c.parent} 1 -j ${c.name}`),
        ]);
      })
      .join('');
    const remove = (['filter', 'nat'] as const)
      .map((t) => {
        const cs = chains.filter((c) => c.table === t);
        return section(t, [
          ...cs.map((c) => `-D ${c.parent} -j ${c.name}`),
          ...cs.flatMap((c) => [`-F ${c.name}`, `-X ${c.name}`]),
        ]);
      })
      .join('');
    return { apply, remove };
  };
  return { v4: one('ipv4'), v6: one('ipv6') };
}
