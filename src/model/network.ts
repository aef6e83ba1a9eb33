/**
 * The typed model of a libvirt network definition (libvirt's `formatnetwork`), as virtnet understands it.
 *
 * A `Network` is what `parseNetworkXml` returns after validation: every string in it has been checked
 * (see validate-network.ts) and is safe to put into a dnsmasq config file, a firewall rule or a command
 * argument. Optional fields are absent when the XML did not give them; defaults that libvirt fills in
 * (uuid, bridge name, mac, stp/delay) are filled in by `applyDefaults` (defaults.ts).
 */

import type { Span } from './span.js';

export type ForwardMode = 'nat' | 'route' | 'open' | 'bridge' | 'none';

export type IpFamily = 'ipv4' | 'ipv6';

export interface PortRange {
  start: number;
  end: number;
}

export interface AddressRange {
  start: string;
  end: string;
}

export interface Forward {
  /** 'none' means no <forward> element (an isolated network). */
  mode: ForwardMode;
  /** `<forward dev=…>`: the only host interface traffic may leave through. */
  dev?: string;
  /** `<forward><interface dev=…/>` children as libvirt formats them back. */
  interfaces: string[];
  nat?: {
    address?: AddressRange;
    port?: PortRange;
    /** `<nat ipv6='yes'/>`: masquerade IPv6 too. */
    ipv6?: boolean;
  };
}

export interface Bridge {
  name?: string;
  /** Default true when virtnet creates the bridge (libvirt's default 'on'). */
  stp?: boolean;
  /** Forward delay in seconds. */
  delay?: number;
  macTableManager?: 'kernel' | 'libvirt';
  zone?: string;
  /** virtnet extension `<virtnet:bridge enslave="eth0"/>` (bridge mode): enslave this physical NIC. */
  enslave?: string;
}

/** Lease time: seconds, or 'infinite'. Unit as written, for formatting back. */
export interface LeaseTime {
  expiry: number; // 0 = infinite
  unit: 'seconds' | 'minutes' | 'hours';
}

export interface DhcpRange {
  start: string;
  end: string;
  lease?: LeaseTime;
}

export interface DhcpHost {
  mac?: string;
  /** DHCPv6 client id (DUID). */
  id?: string;
  name?: string;
  ip?: string;
  lease?: LeaseTime;
}

export interface Bootp {
  file: string;
  server?: string;
}

export interface Dhcp {
  ranges: DhcpRange[];
  hosts: DhcpHost[];
  bootp?: Bootp;
}

export interface IpDef {
  family: IpFamily;
  address: string;
  /** Prefix length; computed from netmask for IPv4 when netmask is given. */
  prefix: number;
  /** Whether the XML used netmask= (IPv4) — kept for formatting back. */
  netmask?: string;
  /** True when the XML gave prefix= explicitly. */
  explicitPrefix?: boolean;
  /** True when the XML gave family= explicitly (libvirt formats it back only then). */
  explicitFamily?: boolean;
  localPtr?: boolean;
  tftpRoot?: string;
  dhcp?: Dhcp;
}

export interface Route {
  family: IpFamily;
  address: string;
  prefix: number;
  netmask?: string;
  explicitPrefix?: boolean;
  gateway: string;
  metric?: number;
  explicitFamily?: boolean;
}

export interface DnsHost {
  ip: string;
  hostnames: string[];
}

export interface DnsSrv {
  service?: string;
  protocol: string;
  domain?: string;
  target?: string;
  port?: number;
  priority?: number;
  weight?: number;
}

export interface DnsTxt {
  name: string;
  value: string;
}

export interface DnsForwarder {
  /** Upstream server address. */
  addr?: string;
  /** Only for this domain. */
  domain?: string;
  /** Upstream server port (`<forwarder port=…>`), only with addr. */
  port?: number;
}

export interface Dns {
  /** `enable='no'` disables DNS in dnsmasq (port=0). Undefined = default (enabled). */
  enable?: boolean;
  forwardPlainNames?: boolean;
  forwarders: DnsForwarder[];
  txts: DnsTxt[];
  hosts: DnsHost[];
  srvs: DnsSrv[];
}

export interface Domain {
  name: string;
  localOnly?: boolean;
  register?: boolean;
}

export interface Network {
  name: string;
  uuid: string;
  /** `<title>`: one line of free text (never reaches a config file). */
  title?: string;
  /** `<description>`: free text, may span lines (never reaches a config file). */
  description?: string;
  /** Raw, verbatim XML of <metadata> children (preserved, never interpreted). */
  metadataXml?: string;
  forward: Forward;
  bridge: Bridge;
  mac?: string;
  mtu?: number;
  domain?: Domain;
  dns?: Dns;
  ips: IpDef[];
  routes: Route[];
  /** `<network ipv6='yes'>`: allow guest-to-guest IPv6 without an IPv6 address. */
  ipv6?: boolean;
  /** `<network trustGuestRxFilters=…>` (kept for round trip). */
  trustGuestRxFilters?: boolean;
  /** `<network connections=…>` (status only; kept for round trip). */
  /** The `dnsmasq:options` namespace, each value verbatim (validated against line injection). */
  dnsmasqOptions: string[];
  /** virtnet extension `<virtnet:span>`: this network spans several hosts (see span.ts). */
  span?: Span;
  /** Elements libvirt knows that virtnet does not implement; each produced a warning. */
  ignored: IgnoredElement[];
}

/** A documented "ignored" element: present in the XML, accepted, warned about, not applied. */
export interface IgnoredElement {
  path: string;
  reason: string;
}

/** Result of parsing: the network and the warnings (ignored elements). */
export interface ParseResult {
  network: Network;
  warnings: string[];
}
