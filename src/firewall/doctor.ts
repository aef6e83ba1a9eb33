/**
 * `virtnetctl doctor`: what on this host blocks or could block a running network's traffic, each
 * finding with what virtnet did about it or the command to run. Pure: the engine gathers the facts
 * (LinuxEngine.doctor), this judges them.
 *
 * Checks:
 * - iptables: each variant's `filter` INPUT/OUTPUT/FORWARD that can drop (Docker, ufw, a script):
 *   `fixed` when the compatibility layer is in place, else a `problem` with the command;
 * - nftables: base chains of other tables (not virtnet's, not iptables-nft's `filter`, not
 *   firewalld's) on the input or forward hook with policy drop — an accept elsewhere never beats them;
 * - firewalld: the bridge's zone (`fixed` when virtnet set it; a `problem` when firewalld runs and
 *   the bridge is in none);
 * - ip_forward off for a NAT or routed network;
 * - a route or an address of another interface overlapping one of the network's subnets;
 * - inotify instances left for root (each dnsmasq takes one);
 * - another process serving DHCP (UDP 67) in this namespace besides the network's dnsmasq.
 */

import { subnetsOverlap } from '../model/ip.js';
import type { Network } from '../model/network.js';
import {
  blockingParents,
  compatRuleSet,
  type IptVariant,
  NFT_COMPAT_TABLES,
  type NftBaseChain,
  parseFilterSave,
  renderCompat,
  renderNftCompat,
} from '../plan/firewall/compat.js';
import type { FwFamily } from '../plan/firewall/rules.js';
import type { ZoneBinding } from './firewalld.js';

export type FindingStatus = 'ok' | 'fixed' | 'warning' | 'problem';

export interface Finding {
  check: string;
  status: FindingStatus;
  detail: string;
  /** The command to run (empty when there is nothing to do). */
  fix: string;
}

export interface DoctorFacts {
  net: Network;
  /** Variant virtnet's own iptables rules are in (iptables backend), if any. */
  ownVariant?: IptVariant;
  /** `iptables-save -t filter` per variant and family that exists on the host. */
  iptables: { variant: IptVariant; family: FwFamily; save: string }[];
  /** Base chains of nftables (from `nft -j list chains`). */
  nftChains: { family: string; table: string; name: string; hook?: string; policy?: string }[];
  /** Base chains with their rules (`nft -j list ruleset`): where the layer's nft accepts are looked for. */
  nftRules?: NftBaseChain[];
  firewalld: { running: boolean; zone: string; binding?: ZoneBinding };
  ipForward: { ipv4: string; ipv6: string };
  /** Routes and addresses of the host (`ip -j route show table all`, `ip -j addr`). */
  routes: { dst: string; dev?: string; table?: string }[];
  addrs: { ifname: string; local: string; prefixlen: number }[];
  inotify: { limit: number; used: number };
  /** Processes with a UDP socket on port 67, other than the network's dnsmasq. */
  dhcpServers: { pid: number; comm: string }[];
}

const OWN_TABLE = /^virtnet_/;

function iptTool(variant: IptVariant, family: FwFamily): string {
  return `${family === 'ipv4' ? 'iptables' : 'ip6tables'}-${variant}`;
}

export function diagnose(f: DoctorFacts): Finding[] {
  const out: Finding[] = [];
  const net = f.net;
  const br = net.bridge.name ?? '';
  const crs = compatRuleSet(net);

  // iptables variants.
  let iptablesSeen = false;
  for (const { variant, family, save } of f.iptables) {
    const blocking = [...blockingParents(parseFilterSave(save))];
    const where = iptTool(variant, family);
    if (!blocking.length) continue;
    iptablesSeen = true;
    const policies = parseFilterSave(save).policies;
    const what = blocking.map((p) => `${p} (policy ${policies.get(p) ?? 'ACCEPT'})`).join(', ');
    if (!crs) {
      out.push({
        check: 'iptables',
        status: 'ok',
        detail: `${where}: ${what} can drop; this network has no traffic of its own to let through`,
        fix: '',
      });
      continue;
    }
    if (variant === f.ownVariant && crs.mode !== 'bridge') {
      out.push({
        check: 'iptables',
        status: 'ok',
        detail: `${where}: ${what} can drop; virtnet's own chains are jumped to from the same chains`,
        fix: '',
      });
      continue;
    }
    const pending = renderCompat(net.name, crs, family, save);
    if (!pending.text)
      out.push({
        check: 'iptables',
        status: pending.parents.length ? 'fixed' : 'ok',
        detail: `${where}: ${what} can drop the guests' traffic; virtnet's accepts are at the head (${pending.parents.join(', ')})`,
        fix: '',
      });
    else
      out.push({
        check: 'iptables',
        status: 'problem',
        detail: `${where}: ${what} can drop the guests' traffic and virtnet's accepts are not in place (${pending.problems.join('; ')})`,
        fix: `${where}-restore --noflush <<'EOF'\n${pending.text}EOF`,
      });
  }
  if (!iptablesSeen)
    out.push({ check: 'iptables', status: 'ok', detail: 'no iptables chain that can drop', fix: '' });

  // Foreign nftables base chains with policy drop.
  const drops = f.nftChains.filter(
    (c) =>
      (c.hook === 'forward' || c.hook === 'input') &&
      c.policy === 'drop' &&
      !OWN_TABLE.test(c.table) &&
      !(c.table === 'filter' && (c.family === 'ip' || c.family === 'ip6')) &&
      !(c.table === 'firewalld' && c.family === 'inet'),
  );
  for (const c of drops) {
    // Docker 29's tables: the layer puts the accepts at the head of the dropping forward chain.
    const fam = c.family === 'ip' ? 'ipv4' : c.family === 'ip6' ? 'ipv6' : undefined;
    const rules = f.nftRules?.find((x) => x.family === c.family && x.table === c.table && x.name === c.name);
    if (fam && crs && rules && c.hook === 'forward' && NFT_COMPAT_TABLES.has(c.table)) {
      const pending = renderNftCompat(net.name, crs, fam, [rules]);
      if (pending.parents.length) {
        out.push(
          pending.text
            ? {
                check: 'nftables',
                status: 'problem',
                detail: `table ${c.family} ${c.table}, chain ${c.name} (hook forward) has policy drop and virtnet's accepts are not in place (${pending.problems.join('; ')})`,
                fix: `nft -f - <<'EOF'\n${pending.text}EOF`,
              }
            : {
                check: 'nftables',
                status: 'fixed',
                detail: `table ${c.family} ${c.table}, chain ${c.name} (hook forward) has policy drop: virtnet's accepts are at its head`,
                fix: '',
              },
        );
        continue;
      }
    }
    out.push({
      check: 'nftables',
      status: 'problem',
      detail: `table ${c.family} ${c.table}, chain ${c.name} (hook ${c.hook}) has policy drop: it drops the guests' ${c.hook === 'forward' ? 'forwarded traffic' : 'DHCP and DNS'} whatever virtnet's tables accept`,
      fix:
        c.hook === 'forward'
          ? `nft insert rule ${c.family} ${c.table} ${c.name} iifname "${br}" accept; nft insert rule ${c.family} ${c.table} ${c.name} oifname "${br}" accept`
          : `nft insert rule ${c.family} ${c.table} ${c.name} iifname "${br}" udp dport { 53, 67 } accept; nft insert rule ${c.family} ${c.table} ${c.name} iifname "${br}" tcp dport 53 accept`,
    });
  }
  if (!drops.length)
    out.push({
      check: 'nftables',
      status: 'ok',
      detail: 'no other table drops by policy on the input or forward hook',
      fix: '',
    });

  // firewalld.
  if (!f.firewalld.running)
    out.push({ check: 'firewalld', status: 'ok', detail: 'firewalld is not running', fix: '' });
  else if (f.firewalld.zone)
    out.push({
      check: 'firewalld',
      status: f.firewalld.binding?.ours ? 'fixed' : 'ok',
      detail: `bridge ${br} is in zone ${f.firewalld.zone}${f.firewalld.binding?.ours ? ' (set by virtnet)' : ''}`,
      fix: '',
    });
  else if (net.forward.mode === 'bridge' || net.forward.mode === 'open')
    out.push({
      check: 'firewalld',
      status: 'warning',
      detail: `bridge ${br} is in no zone (firewalld's default zone applies)`,
      fix: `firewall-cmd --zone=trusted --change-interface=${br}`,
    });
  else
    out.push({
      check: 'firewalld',
      status: 'problem',
      detail: `bridge ${br} is in no zone: firewalld's default zone rejects the guests' DHCP, DNS and forwarding`,
      fix: `firewall-cmd --zone=virtnet --change-interface=${br}`,
    });

  // Forwarding.
  if (net.forward.mode === 'nat' || net.forward.mode === 'route') {
    if (f.ipForward.ipv4 !== '1')
      out.push({
        check: 'ip_forward',
        status: 'problem',
        detail: 'net.ipv4.ip_forward is 0: nothing is forwarded',
        fix: 'sysctl -w net.ipv4.ip_forward=1',
      });
    else out.push({ check: 'ip_forward', status: 'ok', detail: 'net.ipv4.ip_forward is 1', fix: '' });
    const v6 = net.ips.some((ip) => ip.family === 'ipv6');
    if (v6 && f.ipForward.ipv6 !== '1')
      out.push({
        check: 'ip_forward',
        status: 'problem',
        detail: 'net.ipv6.conf.all.forwarding is 0',
        fix: 'sysctl -w net.ipv6.conf.all.forwarding=1',
      });
  }

  // Routes and addresses overlapping the network's subnets.
  const subnets = net.ips.map((ip) => `${ip.address}/${ip.prefix}`);
  let clash = false;
  for (const r of f.routes) {
    if (!r.dst || r.dst === 'default' || r.dev === br || (r.table && r.table !== 'main')) continue;
    const dst = r.dst.includes('/') ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`;
    const hit = subnets.find((s) => safeOverlap(s, dst));
    if (hit) {
      clash = true;
      out.push({
        check: 'routes',
        status: 'problem',
        detail: `route to ${dst} via ${r.dev ?? '?'} overlaps ${hit}`,
        fix: `ip route del ${dst}${r.dev ? ` dev ${r.dev}` : ''}`,
      });
    }
  }
  for (const a of f.addrs) {
    if (a.ifname === br) continue;
    const cidr = `${a.local}/${a.prefixlen}`;
    const hit = subnets.find((s) => safeOverlap(s, cidr));
    if (hit) {
      clash = true;
      out.push({
        check: 'addresses',
        status: 'problem',
        detail: `${a.ifname} has ${cidr}, overlapping ${hit}`,
        fix: `ip addr del ${cidr} dev ${a.ifname}`,
      });
    }
  }
  if (!clash)
    out.push({
      check: 'routes',
      status: 'ok',
      detail: 'no other route or address overlaps the network',
      fix: '',
    });

  // inotify.
  const left = f.inotify.limit - f.inotify.used;
  out.push(
    left < 8
      ? {
          check: 'inotify',
          status: 'warning',
          detail: `${left} of ${f.inotify.limit} inotify instances left (each network's dnsmasq takes one)`,
          fix: `sysctl -w fs.inotify.max_user_instances=${Math.max(512, f.inotify.limit * 2)}`,
        }
      : {
          check: 'inotify',
          status: 'ok',
          detail: `${left} of ${f.inotify.limit} inotify instances left`,
          fix: '',
        },
  );

  // Another DHCP server.
  if (f.dhcpServers.length)
    out.push({
      check: 'dhcp',
      status: 'warning',
      detail: `also serving DHCP (udp 67) here: ${f.dhcpServers.map((p) => `${p.comm} (pid ${p.pid})`).join(', ')}; two servers on one bridge hand out conflicting leases`,
      fix: `check that ${f.dhcpServers.length > 1 ? 'they do' : 'it does'} not listen on ${br}`,
    });
  else out.push({ check: 'dhcp', status: 'ok', detail: 'no other DHCP server in this namespace', fix: '' });
  return out;
}

function safeOverlap(a: string, b: string): boolean {
  const [aa, ap] = a.split('/');
  const [ba, bp] = b.split('/');
  return subnetsOverlap(aa!, Number(ap), ba!, Number(bp));
}
