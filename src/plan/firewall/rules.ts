/**
 * The abstract firewall of a network, as data: which rules libvirt's network driver installs for the
 * network's forward mode (src/network/network_iptables.c / network_nftables.c, re-implemented here),
 * independent of the backend that will carry them.
 *
 * Model. Each rule is one of libvirt's rule shapes (`kind`), with its parameters. `rules` lists them
 * in libvirt's EMISSION order (the order libvirt issues its `--insert` / `insert rule` commands).
 * Because libvirt inserts every rule at the head of its chain, the order in which a chain EVALUATES
 * its rules is the reverse of the emission order restricted to that chain: `chainRules()` gives that.
 * libvirt hooks its forward chains so that guest-to-guest ("cross") is evaluated first, then traffic
 * into the bridge ("in"), then traffic out of the bridge ("out"): `FORWARD_CHAIN_ORDER`.
 *
 * What libvirt does per mode (re-stated from its source):
 * - every mode with a bridge it manages (nat, route, isolated): host rules for DHCP (in: tcp+udp 67,
 *   out: tcp+udp 68) and DNS (tcp+udp 53 both ways) on the bridge, TFTP (udp 69 both ways) when the
 *   first IPv4 `<ip>` carrying dhcp ranges/hosts or tftp has a tftp root, then "reject everything
 *   forwarded out of / into the bridge" and "accept bridge-to-bridge" — for IPv4 always, for IPv6 when
 *   the network has an IPv6 address or `<network ipv6='yes'>` (plus, with an IPv6 address, DNS and
 *   DHCPv6 547 in / 546 out host rules);
 * - nat: per IPv4 `<ip>` (and per IPv6 `<ip>` with `<nat ipv6='yes'/>`): accept out from the subnet,
 *   accept in related/established to the subnet, masquerade subnet → not-subnet (all protocols, and
 *   tcp/udp with source ports mapped into 1024-65535 or the `<nat><port>` range; SNAT to the
 *   `<nat><address>` range instead when given), except to 224.0.0.0/24 and 255.255.255.255/32 (IPv4)
 *   or ff02::/16 (IPv6); IPv6 `<ip>`s without nat ipv6 are routed (as in route mode);
 * - route: per `<ip>`: accept out from the subnet, accept in to the subnet;
 * - isolated (no `<forward>`): only the general rules — nothing leaves, guests see each other;
 * - `forward dev` restricts the per-subnet rules to that host interface;
 * - last, for the first IPv4 `<ip>` with dhcp ranges or hosts, the mangle rule that fills in UDP
 *   checksums of DHCP replies (iptables only; libvirt ignores its failure);
 * - open and bridge modes: no rules at all.
 */
import { ValidationError } from '../../errors.js';
import { canonicalIp, cidr, parseIp } from '../../model/ip.js';
import type { ForwardMode, IpFamily, Network, PortRange } from '../../model/network.js';
import type { L4Proto } from '../../model/values.js';
import { unsafeIfname } from './safe.js';

export type FwFamily = IpFamily;
export type { L4Proto };

/** libvirt's chains, by role (iptables LIBVIRT_INP … / nft guest_output …). */
export type FwChain =
  | 'host-input'
  | 'host-output'
  | 'forward-out'
  | 'forward-in'
  | 'forward-cross'
  | 'nat-postrouting'
  | 'mangle-postrouting';

/** The order in which libvirt's FORWARD hooks evaluate its three forward chains. */
export const FORWARD_CHAIN_ORDER: readonly FwChain[] = ['forward-cross', 'forward-in', 'forward-out'];

/** What a masquerade rule maps the source to. */
export type NatTarget =
  | { type: 'masquerade'; ports?: PortRange }
  | { type: 'snat'; addressStart: string; addressEnd?: string; ports?: PortRange };

export type FirewallRule =
  /** Accept a DHCP/DNS/TFTP request from the guests to the host. */
  | { kind: 'host-input'; family: FwFamily; bridge: string; proto: L4Proto; port: number }
  /** Accept a reply from the host to the guests. */
  | { kind: 'host-output'; family: FwFamily; bridge: string; proto: L4Proto; port: number }
  /** Reject anything forwarded out of the bridge (catch-all). */
  | { kind: 'forward-reject-out'; family: FwFamily; bridge: string }
  /** Reject anything forwarded into the bridge (catch-all). */
  | { kind: 'forward-reject-in'; family: FwFamily; bridge: string }
  /** Accept guest-to-guest across the bridge. */
  | { kind: 'forward-allow-cross'; family: FwFamily; bridge: string }
  /** Accept forwarding from the subnet out of the bridge (optionally only to `physdev`). */
  | { kind: 'forward-allow-out'; family: FwFamily; bridge: string; subnet: string; physdev?: string }
  /** Accept forwarding into the bridge to the subnet for established/related connections. */
  | { kind: 'forward-allow-related-in'; family: FwFamily; bridge: string; subnet: string; physdev?: string }
  /** Accept forwarding into the bridge to the subnet (route mode). */
  | { kind: 'forward-allow-in'; family: FwFamily; bridge: string; subnet: string; physdev?: string }
  /** Source NAT of the subnet to anything outside it. */
  | {
      kind: 'masquerade';
      family: FwFamily;
      subnet: string;
      physdev?: string;
      proto?: L4Proto;
      target: NatTarget;
    }
  /** Exempt subnet → `destination` from source NAT. */
  | { kind: 'dont-masquerade'; family: FwFamily; subnet: string; physdev?: string; destination: string }
  /** Fill in UDP checksums of packets to `port` leaving through the bridge (mangle table). */
  | { kind: 'checksum-fill'; family: 'ipv4'; bridge: string; port: number };

export type FirewallRuleKind = FirewallRule['kind'];

export interface FirewallRuleSet {
  network: string;
  mode: ForwardMode;
  /** The bridge the rules are about (absent only when there are no rules). */
  bridge?: string;
  /** libvirt's emission order (see the module comment); empty for open and bridge modes. */
  rules: FirewallRule[];
}

export function chainOf(rule: FirewallRule): FwChain {
  switch (rule.kind) {
    case 'host-input':
      return 'host-input';
    case 'host-output':
      return 'host-output';
    case 'forward-reject-out':
    case 'forward-allow-out':
      return 'forward-out';
    case 'forward-reject-in':
    case 'forward-allow-related-in':
    case 'forward-allow-in':
      return 'forward-in';
    case 'forward-allow-cross':
      return 'forward-cross';
    case 'masquerade':
    case 'dont-masquerade':
      return 'nat-postrouting';
    case 'checksum-fill':
      return 'mangle-postrouting';
  }
}

/** The rules of one chain of one family in EVALUATION order (reverse of libvirt's inserts). */
export function chainRules(rs: FirewallRuleSet, family: FwFamily, chain: FwChain): FirewallRule[] {
  return rs.rules.filter((r) => r.family === family && chainOf(r) === chain).reverse();
}

/** Families that have at least one rule. */
export function familiesOf(rs: FirewallRuleSet): FwFamily[] {
  const out: FwFamily[] = [];
  for (const f of ['ipv4', 'ipv6'] as const) if (rs.rules.some((r) => r.family === f)) out.push(f);
  return out;
}

const LOCAL_MULTICAST_V4 = '224.0.0.0/24';
const LOCAL_MULTICAST_V6 = 'ff02::/16';
const LOCAL_BROADCAST = '255.255.255.255/32';
const DEFAULT_NAT_PORTS: PortRange = { start: 1024, end: 65535 };

/** The host interface libvirt restricts forwarding to: `forward dev`, else the first `<interface>`. */
function forwardIf(net: Network): string | undefined {
  return net.forward.dev ?? net.forward.interfaces[0];
}

function checkIfname(name: string, path: string): void {
  const why = unsafeIfname(name);
  if (why) throw ValidationError.one(path, name, why);
}

/**
 * The rule set of a network's forward mode — the same rules libvirt installs for it. Pure.
 * Throws ValidationError for values a firewall cannot carry (an invalid `<nat><port>` range, which
 * libvirt also refuses when it starts the network; an interface name outside the safe shape).
 */
export function planFirewall(net: Network): FirewallRuleSet {
  const mode = net.forward.mode;
  if (mode === 'open' || mode === 'bridge') return { network: net.name, mode, rules: [] };

  const bridge = net.bridge.name;
  if (bridge === undefined) {
    throw new Error(`internal: network '${net.name}' has no bridge name (defaults not applied)`);
  }
  checkIfname(bridge, 'network/bridge@name');
  const physdev = mode === 'nat' || mode === 'route' ? forwardIf(net) : undefined;
  if (physdev !== undefined) checkIfname(physdev, 'network/forward@dev');

  const rules: FirewallRule[] = [];
  const ipv4 = net.ips.filter((ip) => ip.family === 'ipv4');
  const hasIpv6 = net.ips.some((ip) => ip.family === 'ipv6');
  const hostRule = (
    kind: 'host-input' | 'host-output',
    family: FwFamily,
    proto: L4Proto,
    port: number,
  ): FirewallRule => ({ kind, family, bridge, proto, port });

  // General IPv4 rules. libvirt looks at the first IPv4 <ip> with DHCP or TFTP for the TFTP rules.
  const dhcpOrTftp = ipv4.find(
    (ip) => (ip.dhcp?.ranges.length ?? 0) + (ip.dhcp?.hosts.length ?? 0) > 0 || ip.tftpRoot,
  );
  rules.push(
    hostRule('host-input', 'ipv4', 'tcp', 67),
    hostRule('host-input', 'ipv4', 'udp', 67),
    hostRule('host-output', 'ipv4', 'tcp', 68),
    hostRule('host-output', 'ipv4', 'udp', 68),
    hostRule('host-input', 'ipv4', 'tcp', 53),
    hostRule('host-input', 'ipv4', 'udp', 53),
    hostRule('host-output', 'ipv4', 'tcp', 53),
    hostRule('host-output', 'ipv4', 'udp', 53),
  );
  if (dhcpOrTftp?.tftpRoot) {
    rules.push(hostRule('host-input', 'ipv4', 'udp', 69), hostRule('host-output', 'ipv4', 'udp', 69));
  }
  rules.push(
    { kind: 'forward-reject-out', family: 'ipv4', bridge },
    { kind: 'forward-reject-in', family: 'ipv4', bridge },
    { kind: 'forward-allow-cross', family: 'ipv4', bridge },
  );

  // General IPv6 rules: with an IPv6 address, or guest-to-guest only with <network ipv6='yes'>.
  if (hasIpv6 || net.ipv6) {
    rules.push(
      { kind: 'forward-reject-out', family: 'ipv6', bridge },
      { kind: 'forward-reject-in', family: 'ipv6', bridge },
      { kind: 'forward-allow-cross', family: 'ipv6', bridge },
    );
    if (hasIpv6) {
      rules.push(
        hostRule('host-input', 'ipv6', 'tcp', 53),
        hostRule('host-input', 'ipv6', 'udp', 53),
        hostRule('host-output', 'ipv6', 'tcp', 53),
        hostRule('host-output', 'ipv6', 'udp', 53),
        hostRule('host-input', 'ipv6', 'udp', 547),
        hostRule('host-output', 'ipv6', 'udp', 546),
      );
    }
  }

  // Per-<ip> rules, in document order.
  net.ips.forEach((ip, index) => {
    const family = ip.family;
    const parsed = typeof ip.address === 'string' ? parseIp(ip.address) : undefined;
    if (!parsed || parsed.family !== family) {
      throw ValidationError.one(`network/ip[${index}]@address`, ip.address, `not an ${family} address`);
    }
    const maxPrefix = family === 'ipv4' ? 32 : 128;
    if (!Number.isInteger(ip.prefix) || ip.prefix < 0 || ip.prefix > maxPrefix) {
      throw ValidationError.one(
        `network/ip[${index}]@prefix`,
        String(ip.prefix),
        `prefix must be 0..${maxPrefix}`,
      );
    }
    const subnet = cidr(ip.address, ip.prefix);
    const masquerade = mode === 'nat' && (family === 'ipv4' || net.forward.nat?.ipv6 === true);
    const routed = mode === 'route' || (mode === 'nat' && !masquerade);
    const fwd = physdev === undefined ? {} : { physdev };
    if (masquerade) {
      rules.push(
        { kind: 'forward-allow-out', family, bridge, subnet, ...fwd },
        { kind: 'forward-allow-related-in', family, bridge, subnet, ...fwd },
      );
      const generic = natTarget(net, family, undefined);
      const withPorts = natTarget(net, family, DEFAULT_NAT_PORTS);
      rules.push(
        { kind: 'masquerade', family, subnet, ...fwd, target: generic },
        { kind: 'masquerade', family, subnet, ...fwd, proto: 'udp', target: withPorts },
        { kind: 'masquerade', family, subnet, ...fwd, proto: 'tcp', target: withPorts },
      );
      if (family === 'ipv4') {
        rules.push({ kind: 'dont-masquerade', family, subnet, ...fwd, destination: LOCAL_BROADCAST });
      }
      rules.push({
        kind: 'dont-masquerade',
        family,
        subnet,
        ...fwd,
        destination: family === 'ipv4' ? LOCAL_MULTICAST_V4 : LOCAL_MULTICAST_V6,
      });
    } else if (routed) {
      rules.push(
        { kind: 'forward-allow-out', family, bridge, subnet, ...fwd },
        { kind: 'forward-allow-in', family, bridge, subnet, ...fwd },
      );
    }
  });

  // The DHCP checksum rule: first IPv4 <ip> with dhcp ranges or hosts.
  const dhcp = ipv4.find((ip) => (ip.dhcp?.ranges.length ?? 0) + (ip.dhcp?.hosts.length ?? 0) > 0);
  if (dhcp) rules.push({ kind: 'checksum-fill', family: 'ipv4', bridge, port: 68 });

  return { network: net.name, mode, bridge, rules };
}

/**
 * What a masquerade rule of `family` maps to. `defaultPorts` is given for the tcp/udp rules: libvirt
 * restricts their source ports to the `<nat><port>` range, or 1024-65535 when none is given.
 */
function natTarget(net: Network, family: FwFamily, defaultPorts: PortRange | undefined): NatTarget {
  const nat = net.forward.nat;
  let ports: PortRange | undefined;
  if (defaultPorts) {
    const given = nat?.port;
    ports = given && !(given.start === 0 && given.end === 0) ? given : defaultPorts;
    if (
      !(
        Number.isInteger(ports.start) &&
        Number.isInteger(ports.end) &&
        ports.start >= 1 &&
        ports.start < ports.end &&
        ports.end < 65536
      )
    ) {
      throw ValidationError.one(
        'network/forward/nat/port',
        `${ports.start}-${ports.end}`,
        'invalid port range: need 1 <= start < end <= 65535',
      );
    }
    ports = { start: ports.start, end: ports.end };
  }
  // libvirt uses the <nat><address> range only for subnets of the same family.
  const addr = nat?.address;
  const start = addr ? canonicalIp(addr.start) : undefined;
  if (addr && start && parseIp(start)?.family === family) {
    const end = canonicalIp(addr.end);
    const endOk = end !== undefined && parseIp(end)?.family === family;
    return {
      type: 'snat',
      addressStart: start,
      ...(endOk ? { addressEnd: end } : {}),
      ...(ports ? { ports } : {}),
    };
  }
  return ports ? { type: 'masquerade', ports } : { type: 'masquerade' };
}
