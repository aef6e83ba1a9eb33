/**
 * Small value types every layer shares (planners, drivers, engine, bus, hooks, CLI): the firewall
 * backend's name, a DHCP lease as dnsmasq reports it, a live host entry. Types only.
 */

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

/** A DHCP reservation and/or DNS name added live (not part of the XML definition). */
export interface HostEntry {
  mac?: string;
  ip?: string;
  hostname?: string;
}
