/**
 * Small value types every layer shares (planners, drivers, engine, bus, hooks, CLI): the firewall
 * backend's name, a DHCP lease as dnsmasq reports it, a live host entry, a resolved port forward.
 * Types only.
 */
import type { IpFamily } from './network.js';

export type FirewallBackend = 'nftables' | 'iptables';

/** One DHCP lease as dnsmasq reports it. */
export interface Lease {
  mac: string;
  ip: string;
  hostname: string;
  /** Expiry in unix seconds; 0 for infinite. */
  expiry: number;
  clientId?: string;
}

export type L4Proto = 'tcp' | 'udp';

/**
 * One inbound port forward of one family, resolved to its DNAT target: what the firewall planner
 * renders and the hooks record. (The domain metadata's declaration, model/domain-metadata.ts, names
 * families and no guest address: it becomes one of these per family once the guest's address is known.)
 */
export interface PortForwardTarget {
  proto: L4Proto;
  family: IpFamily;
  hostPort: number;
  guestPort: number;
  /** The guest's fixed address (DNAT target). */
  guestIp: string;
  /** Only connections to this host address (default: any local address of the host). */
  hostAddress?: string;
}

/** A DHCP reservation and/or DNS name added live (not part of the XML definition). */
export interface HostEntry {
  mac?: string;
  ip?: string;
  hostname?: string;
}
