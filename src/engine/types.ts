/**
 * The contract between the engine (which brings networks up and down on the host) and its users
 * (the daemon's bus service, the hooks' in-process fallback, the CLI's offline paths, tests).
 */

import type { Finding } from '../firewall/doctor.js';
import type { ZoneManager } from '../firewall/firewalld.js';
import type { Network } from '../model/network.js';
import type { FirewallBackend, HostEntry, Lease } from '../model/values.js';
import type { SpanPeer, SpanState } from './span.js';

/** What the engine knows about a running network. */
export interface ActiveNetworkInfo {
  name: string;
  bridge: string;
  firewall: FirewallBackend | 'none';
  dnsmasqPid?: number;
  /** Ports (taps/veths) the engine attached to the bridge. */
  ports: string[];
  /** Live host entries added with addHost (on top of the XML's own). */
  extraHosts: HostEntry[];
  startedAt: string;
  /** A spanning network: this host's role, its underlay address, the other hosts, the VXLAN port. */
  span?: SpanState;
}

/** Events the engine emits; the daemon turns them into D-Bus signals. */
export interface EngineEvents {
  started: { name: string };
  stopped: { name: string };
  updated: { name: string };
  'lease-changed': {
    name: string;
    event: 'added' | 'updated' | 'deleted';
    mac: string;
    ip: string;
    hostname: string;
  };
  'port-attached': { name: string; ifname: string; mac: string; domain: string };
  'port-detached': { name: string; ifname: string; domain: string };
  /** Rules of the network were found missing and put back (`missing`: what was missing). */
  repaired: { name: string; missing: string[] };
}

export interface Engine {
  /** Which firewall backend was chosen at start, and why (for logs). */
  readonly firewallBackend: FirewallBackend;
  /** Adopt networks already up (after a restart) and repair drift; never disturbs running guests. */
  adopt(defined: Network[]): Promise<void>;
  start(net: Network): Promise<ActiveNetworkInfo>;
  stop(name: string): Promise<void>;
  /** Reconcile a running network with a new definition (SIGHUP / dnsmasq restart / firewall swap). */
  update(net: Network): Promise<void>;
  isActive(name: string): boolean;
  info(name: string): ActiveNetworkInfo | undefined;
  list(): ActiveNetworkInfo[];
  /** A spanning network's other hosts (reachability, MACs behind each); [] for other networks. */
  spanPeers(name: string): Promise<SpanPeer[]>;
  addHost(name: string, host: HostEntry): Promise<void>;
  removeHost(name: string, mac: string): Promise<void>;
  leases(name: string): Promise<Lease[]>;
  attachPort(name: string, ifname: string, meta?: { mac?: string; domain?: string }): Promise<void>;
  detachPort(name: string, ifname: string, meta?: { domain?: string }): Promise<void>;
  on<K extends keyof EngineEvents>(event: K, listener: (e: EngineEvents[K]) => void): void;
  off<K extends keyof EngineEvents>(event: K, listener: (e: EngineEvents[K]) => void): void;
  /**
   * firewalld zones for the bridges (virtnetd passes one over its system-bus connection): networks
   * started from now on, and those already active, are put into their zone; re-done when firewalld
   * reloads or restarts. Optional (engines without firewalld support leave it out).
   */
  useFirewallZones?(zones: ZoneManager): Promise<void>;
  /** What on this host blocks or could block a running network's traffic (`virtnetctl doctor`). */
  doctor?(name: string): Promise<Finding[]>;
  /** Stop supervising (does NOT stop networks: they stay up, like libvirt's KillMode=process). */
  close(): Promise<void>;
}
