/**
 * A live update as the difference of two plans: what changes on the host when a running network's
 * definition is replaced, step by step, in the order the engine applies them. Pure.
 *
 * - The bridge's identity changes (its name, its MAC, host bridge vs ours, the enslaved NIC) or the
 *   network spans hosts: nothing can be kept — one `restart` step (ports re-attached by the engine).
 * - Links: STP/forward delay, MTU, addresses and routes that differ, in one `ip -batch -`
 *   (routes out before addresses out; addresses in before routes in, so a gateway stays reachable).
 * - Bridge and host sysctls that differ.
 * - Firewall: only when the scripts differ. Between two nftables plans the new apply script replaces
 *   the network's tables in one transaction; otherwise the old rules go, then the new ones come.
 * - dnsmasq: stopped when no longer needed, started when newly needed, restarted when its config or
 *   command line differ, sent SIGHUP when only the hostsfile / addn-hosts differ.
 * Equal plans give no step.
 */
import type { Network } from '../model/network.js';
import type { FirewallScripts } from './firewall/scripts.js';
import { firewallOf, type NetworkPlan } from './index.js';
import type { LinkOp, Sysctl } from './links.js';

/** A network and its plan (the identity checks need a few fields the plan does not carry). */
export interface PlannedNetwork {
  network: Network;
  plan: NetworkPlan;
}

export interface DnsmasqFiles {
  conf: string;
  hostsfile: string;
  addnhosts: string;
  argv: string[];
}

export type UpdateStep =
  | { kind: 'restart'; why: string }
  | { kind: 'links'; ops: LinkOp[] }
  | { kind: 'bridge-sysctls'; sysctls: Sysctl[] }
  | { kind: 'host-sysctls'; sysctls: Sysctl[] }
  | {
      kind: 'firewall';
      /** Rules to remove first (absent for an atomic nftables swap or when there were none). */
      remove?: FirewallScripts;
      /** Rules to apply (absent when the network has none any more). */
      apply?: FirewallScripts;
      /** The apply replaces the old rules in one transaction. */
      atomic: boolean;
    }
  | { kind: 'dnsmasq-stop' }
  | ({ kind: 'dnsmasq-start' | 'dnsmasq-restart' } & DnsmasqFiles)
  | { kind: 'dnsmasq-reload'; hostsfile: string; addnhosts: string };

const key = (x: unknown): string => JSON.stringify(x);

/** Why the network must be restarted as a whole, or undefined when it can be changed in place. */
function restartReason(a: Network, b: Network): string | undefined {
  if (a.forward.mode !== b.forward.mode && (a.forward.mode === 'bridge' || b.forward.mode === 'bridge'))
    return `forward mode ${a.forward.mode} → ${b.forward.mode}`;
  if (a.bridge.name !== b.bridge.name) return `bridge ${a.bridge.name} → ${b.bridge.name}`;
  if (a.bridge.enslave !== b.bridge.enslave) return 'enslaved interface changed';
  if (a.mac !== b.mac) return `MAC ${a.mac} → ${b.mac}`;
  // A spanning network's host part depends on this host's role: it is started again as a whole.
  if (a.span !== undefined || b.span !== undefined) return 'spanning network';
  return undefined;
}

function linkOps(a: NetworkPlan, b: NetworkPlan): LinkOp[] {
  const ops: LinkOp[] = [];
  const oldOps = a.links.ops;
  const newOps = b.links.ops;
  const oldBr = oldOps.find((o) => o.kind === 'bridge-add');
  const newBr = newOps.find((o) => o.kind === 'bridge-add');
  if (
    oldBr?.kind === 'bridge-add' &&
    newBr?.kind === 'bridge-add' &&
    (oldBr.stp !== newBr.stp || oldBr.forwardDelay !== newBr.forwardDelay)
  )
    ops.push({ kind: 'bridge-set', name: newBr.name, stp: newBr.stp, forwardDelay: newBr.forwardDelay });
  const mtuOf = (list: readonly LinkOp[], br: string | undefined) => {
    const o = list.find((x) => x.kind === 'link-set' && x.name === br && x.mtu !== undefined);
    return o?.kind === 'link-set' ? o.mtu : undefined;
  };
  const newMtu = mtuOf(newOps, newBr?.name);
  if (newBr && newMtu !== undefined && newMtu !== mtuOf(oldOps, oldBr?.name))
    ops.push({ kind: 'link-set', name: newBr.name, mtu: newMtu });
  const only = (list: readonly LinkOp[], kind: LinkOp['kind']) => list.filter((o) => o.kind === kind);
  const missing = (from: LinkOp[], inList: LinkOp[]) =>
    from.filter((o) => !inList.some((n) => key(n) === key(o)));
  const [oldAddrs, newAddrs] = [only(oldOps, 'addr-add'), only(newOps, 'addr-add')];
  const [oldRoutes, newRoutes] = [only(oldOps, 'route-add'), only(newOps, 'route-add')];
  for (const o of missing(oldRoutes, newRoutes))
    if (o.kind === 'route-add') ops.push({ ...o, kind: 'route-del' });
  for (const o of missing(oldAddrs, newAddrs))
    if (o.kind === 'addr-add') ops.push({ ...o, kind: 'addr-del' });
  ops.push(...missing(newAddrs, oldAddrs), ...missing(newRoutes, oldRoutes));
  return ops;
}

/** The sysctls of `b` whose value differs from (or is absent in) `a`. */
function changedSysctls(a: readonly Sysctl[], b: readonly Sysctl[]): Sysctl[] {
  return b.filter((s) => !a.some((o) => o.key === s.key && o.value === s.value));
}

function dnsmasqSteps(a: NetworkPlan, b: NetworkPlan): UpdateStep[] {
  const was = a.dnsmasqConf !== null;
  if (b.dnsmasqConf === null || b.dnsmasqArgv === null) return was ? [{ kind: 'dnsmasq-stop' }] : [];
  const files: DnsmasqFiles = {
    conf: b.dnsmasqConf,
    hostsfile: b.hostsfile,
    addnhosts: b.addnhosts,
    argv: b.dnsmasqArgv,
  };
  if (!was) return [{ kind: 'dnsmasq-start', ...files }];
  if (a.dnsmasqConf !== b.dnsmasqConf || key(a.dnsmasqArgv) !== key(b.dnsmasqArgv))
    return [{ kind: 'dnsmasq-restart', ...files }];
  if (a.hostsfile !== b.hostsfile || a.addnhosts !== b.addnhosts)
    return [{ kind: 'dnsmasq-reload', hostsfile: b.hostsfile, addnhosts: b.addnhosts }];
  return [];
}

/** The steps that turn the running `old` into `next`. */
export function diffPlans(old: PlannedNetwork, next: PlannedNetwork): UpdateStep[] {
  const why = restartReason(old.network, next.network);
  if (why) return [{ kind: 'restart', why }];
  const a = old.plan;
  const b = next.plan;
  const steps: UpdateStep[] = [];
  const ops = linkOps(a, b);
  if (ops.length) steps.push({ kind: 'links', ops });
  const bridgeSysctls = changedSysctls(a.links.bridgeSysctls, b.links.bridgeSysctls);
  if (bridgeSysctls.length) steps.push({ kind: 'bridge-sysctls', sysctls: bridgeSysctls });
  if (key(a.links.sysctls) !== key(b.links.sysctls))
    steps.push({ kind: 'host-sysctls', sysctls: b.links.sysctls });
  const from = firewallOf(a);
  const to = firewallOf(b);
  if (key(from) !== key(to)) {
    const atomic = from?.backend === 'nftables' && to?.backend === 'nftables';
    steps.push({
      kind: 'firewall',
      ...(from && !atomic ? { remove: from } : {}),
      ...(to ? { apply: to } : {}),
      atomic,
    });
  }
  steps.push(...dnsmasqSteps(a, b));
  return steps;
}
