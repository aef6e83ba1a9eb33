/**
 * Everything a network needs, computed as data without touching the system: the dnsmasq config,
 * hostsfile and addn-hosts texts with their paths and dnsmasq's command line (plan/dnsmasq), the
 * firewall scripts for the host's backend (plan/firewall) and the links and sysctls (plan/links).
 * `virtnetctl plan` prints this; the engine applies exactly this (engine/units/*), and a live update
 * is the difference of two plans (plan/diff.ts).
 * Pure: no I/O. Throws ValidationError for a network that cannot be planned.
 */

import type { Network } from '../model/network.js';
import type { FirewallBackend, HostEntry } from '../model/values.js';
import {
  type DnsmasqPaths,
  dnsmasqArgv,
  needsDnsmasq,
  renderAddnhosts,
  renderDnsmasqConf,
  renderHostsfile,
} from './dnsmasq.js';
import { renderIptables } from './firewall/iptables.js';
import { renderNftables } from './firewall/nftables.js';
import { planFirewall } from './firewall/rules.js';
import type { FirewallScripts } from './firewall/scripts.js';
import { type LinkOp, planLinksDown, planLinksUp, renderIpBatch, type Sysctl } from './links.js';

export interface PlanPaths extends DnsmasqPaths {
  /** Where the dnsmasq config itself is written (the config does not name itself). */
  conf: string;
  /** dnsmasq's `--pid-file`. */
  pid: string;
  /** dnsmasq's `--dhcp-leasefile`. */
  leases: string;
}

/** What the engine knows of the host that changes the plan. */
export interface HostFacts {
  /** The firewall backend the rules are rendered for. */
  firewall: FirewallBackend;
  paths: PlanPaths;
  /** Also plan the `<bridge>-nic` MAC-pinning tap (libvirt < 5.x behaviour; never for mode bridge). */
  macTap?: boolean;
  /** dnsmasq owns `uk.org.thekelleys.dnsmasq.<bridge>` on the system bus (lease signals). */
  dnsmasqDbus?: boolean;
  /** dnsmasq `--user`. */
  dnsmasqUser?: string;
  /** Reservations added at run time (AddHost), rendered after the definition's own. */
  extraHosts?: readonly HostEntry[];
}

/** The options `planNetwork` took before it took host facts (the same object). */
export type PlanOptions = HostFacts;

export interface LinksPlanOut {
  /** Bring-up ops, in order. */
  ops: LinkOp[];
  /** The same as one `ip -batch -` text. */
  batch: string;
  /** Tear-down as one `ip -batch -` text. */
  teardown: string;
  /** Host-wide sysctls (restored on stop). */
  sysctls: Sysctl[];
  /** Sysctls of the bridge itself (applied right after it exists). */
  bridgeSysctls: Sysctl[];
}

export interface NetworkPlan {
  /** dnsmasq's config text, or null when the network runs no dnsmasq (bridge/open without IPs …). */
  dnsmasqConf: string | null;
  hostsfile: string;
  addnhosts: string;
  /** The command dnsmasq runs with, or null when the network runs no dnsmasq. */
  dnsmasqArgv: string[] | null;
  /** Where the dnsmasq files go. */
  paths: PlanPaths;
  firewall: FirewallScripts;
  /** How many rules the firewall scripts hold: 0 means the network installs none. */
  firewallRules: number;
  links: LinksPlanOut;
}

/** The firewall scripts (apply + remove) of the network for one backend, and the rule count. */
function planFirewallScripts(
  net: Network,
  backend: FirewallBackend,
): { scripts: FirewallScripts; rules: number } {
  const rules = planFirewall(net);
  const scripts: FirewallScripts =
    backend === 'nftables'
      ? { backend, nft: renderNftables(rules) }
      : { backend, iptables: renderIptables(rules) };
  return { scripts, rules: rules.rules.length };
}

/** The plan's firewall scripts when it has rules to install, else undefined. */
export function firewallOf(plan: NetworkPlan): FirewallScripts | undefined {
  return plan.firewallRules > 0 ? plan.firewall : undefined;
}

/** virtnet's file names for a network's dnsmasq files under `dir`. */
export function defaultPlanPaths(dir: string, name: string): PlanPaths {
  return {
    conf: `${dir}/${name}.conf`,
    hostsfile: `${dir}/${name}.hostsfile`,
    addnhosts: `${dir}/${name}.addnhosts`,
    pid: `${dir}/${name}.pid`,
    leases: `${dir}/${name}.leases`,
  };
}

/** Whether the MAC-pinning tap is planned for `net` under these facts. */
export function plansMacTap(net: Network, facts: HostFacts): boolean {
  return Boolean(facts.macTap) && net.forward.mode !== 'bridge';
}

/** The dnsmasq command of `net` under these facts. */
export function planDnsmasqArgv(net: Network, facts: HostFacts): string[] {
  return dnsmasqArgv({
    confFile: facts.paths.conf,
    pidFile: facts.paths.pid,
    leaseFile: facts.paths.leases,
    ...(facts.dnsmasqDbus ? { dbusName: `uk.org.thekelleys.dnsmasq.${net.bridge.name}` } : {}),
    ...(facts.dnsmasqUser ? { user: facts.dnsmasqUser } : {}),
  });
}

/** Compose the planners. `net` must have its defaults applied (bridge name, MAC). */
export function planNetwork(net: Network, facts: HostFacts): NetworkPlan {
  const { hostsfile, addnhosts } = facts.paths;
  const macTap = plansMacTap(net, facts);
  const up = planLinksUp(net, { macTap });
  const extra = [...(facts.extraHosts ?? [])];
  const fw = planFirewallScripts(net, facts.firewall);
  const dnsmasq = needsDnsmasq(net);
  return {
    dnsmasqConf: dnsmasq ? renderDnsmasqConf(net, { hostsfile, addnhosts }) : null,
    hostsfile: renderHostsfile(net, extra),
    addnhosts: renderAddnhosts(net, extra),
    dnsmasqArgv: dnsmasq ? planDnsmasqArgv(net, facts) : null,
    paths: { ...facts.paths },
    firewall: fw.scripts,
    firewallRules: fw.rules,
    links: {
      ops: up.ops,
      batch: renderIpBatch(up.ops),
      teardown: renderIpBatch(planLinksDown(net, { macTap })),
      sysctls: up.sysctls,
      bridgeSysctls: up.bridgeSysctls,
    },
  };
}
