/**
 * Everything a network needs, computed as data without touching the system: the dnsmasq config,
 * hostsfile and addn-hosts texts (plan/dnsmasq), the firewall scripts for the chosen backend
 * (plan/firewall) and the links (plan/links). `virtnetctl plan` prints this; the engine applies it.
 * Pure: no I/O. Throws ValidationError for a network that cannot be planned.
 */

import type { Network } from '../model/network.js';
import type { FirewallBackend } from '../model/values.js';
import {
  type DnsmasqPaths,
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
  /** Where the dnsmasq config itself is written (for display; the config does not name itself). */
  conf: string;
}

export interface PlanOptions {
  firewall: FirewallBackend;
  paths: PlanPaths;
  /** Also plan the `<bridge>-nic` MAC-pinning tap (libvirt < 5.x behaviour). */
  macTap?: boolean;
}

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
  firewall: FirewallScripts;
  links: LinksPlanOut;
}

/** The firewall scripts (apply + remove) of the network for one backend. */
function planFirewallScripts(net: Network, backend: FirewallBackend): FirewallScripts {
  const rules = planFirewall(net);
  return backend === 'nftables'
    ? { backend, nft: renderNftables(rules) }
    : { backend, iptables: renderIptables(rules) };
}

/** virtnet's file names for a network's dnsmasq files under `dir`. */
export function defaultPlanPaths(dir: string, name: string): PlanPaths {
  return {
    conf: `${dir}/${name}.conf`,
    hostsfile: `${dir}/${name}.hostsfile`,
    addnhosts: `${dir}/${name}.addnhosts`,
  };
}

/** Compose the planners. `net` must have its defaults applied (bridge name, MAC). */
export function planNetwork(net: Network, opts: PlanOptions): NetworkPlan {
  const { conf: _conf, ...dnsmasqPaths } = opts.paths;
  const up = planLinksUp(net, { macTap: opts.macTap ?? false });
  return {
    dnsmasqConf: needsDnsmasq(net) ? renderDnsmasqConf(net, dnsmasqPaths) : null,
    hostsfile: renderHostsfile(net),
    addnhosts: renderAddnhosts(net),
    firewall: planFirewallScripts(net, opts.firewall),
    links: {
      ops: up.ops,
      batch: renderIpBatch(up.ops),
      teardown: renderIpBatch(planLinksDown(net, { macTap: opts.macTap ?? false })),
      sysctls: up.sysctls,
      bridgeSysctls: up.bridgeSysctls,
    },
  };
}
