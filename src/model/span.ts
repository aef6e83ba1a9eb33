/**
 * virtnet's `<virtnet:span>` extension: one network spread over several hosts on one L2 overlay
 * (Linux VXLAN). The same XML is defined on every host; each host finds its role from which of the
 * span's addresses is one of its own (`spanRole`, a pure function of the host's addresses).
 *
 *   <network xmlns:virtnet='https://virtnet.org/xmlns/network/1'>
 *     …
 *     <virtnet:span mode='vxlan' vni='10100' gateway='192.0.2.11' dstport='4789'>
 *       <virtnet:peer address='192.0.2.12'/>
 *       <virtnet:peer address='192.0.2.13'/>
 *     </virtnet:span>
 *   </network>
 *
 * - `gateway`: the underlay address of the host that runs the network as defined (bridge address,
 *   dnsmasq, NAT, port forwards) plus a VXLAN port on its bridge.
 * - `<virtnet:peer address>`: the underlay address of each member host. A member runs the bridge (with
 *   its own MAC) and the VXLAN port only — no address, no dnsmasq, no NAT — so there is one DHCP
 *   server and one NAT per network and nothing has to be synchronised between hosts.
 * - `mode='vxlan'`: static peers, head-end replication (one all-zero FDB entry per remote host) and
 *   kernel MAC learning. `mode='evpn'`: BGP EVPN (FRR) fills the FDB; VXLAN ports without learning.
 * - `vni`: the VXLAN network identifier, 1–16777215, the same on every host.
 * - `dstport`: UDP port of the VXLAN traffic (default 4789, IANA's).
 */
import { createHash } from 'node:crypto';
import type { Problem } from '../errors.js';
import { canonicalIp, parseIp } from './ip.js';
import type { IpFamily, Network } from './network.js';
import { childElements, escapeAttr, isElement, type XmlElement } from './xml.js';

export type SpanMode = 'vxlan' | 'evpn';

export interface Span {
  mode: SpanMode;
  vni: number;
  /** Underlay address of the gateway host (canonical text). */
  gateway: string;
  /** Underlay addresses of the member hosts (canonical text), in document order. */
  peers: string[];
  /** UDP destination port; absent = 4789. */
  dstport?: number;
}

export const SPAN_DEFAULT_DSTPORT = 4789;
export const SPAN_MAX_VNI = 16777215;

type Add = (path: string, value: string | undefined, reason: string) => void;

const P = 'network/virtnet:span';

function checkAttrs(add: Add, el: XmlElement, path: string, allowed: readonly string[]): void {
  for (const [k, v] of Object.entries(el.attrs)) {
    if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
    if (!allowed.includes(k)) add(`${path}@${k}`, v, `unknown attribute '${k}' on <${el.name}>`);
  }
  for (const c of el.children)
    if (!isElement(c) && c.text.trim() !== '')
      add(path, c.text.trim(), `unexpected text inside <${el.name}>`);
}

function decimal(add: Add, path: string, v: string, min: number, max: number): number | undefined {
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) {
    add(path, v, `expected a decimal integer from ${min} to ${max}`);
    return undefined;
  }
  return Number(v);
}

function address(v: string): string {
  return canonicalIp(v) ?? v;
}

/**
 * Structural parse of `<virtnet:span>` (namespace `ns`); value checks are in `validateSpan`.
 * Problems go to `add` with the element path.
 */
export function parseSpanElement(add: Add, el: XmlElement, ns: string): Span {
  checkAttrs(add, el, P, ['mode', 'vni', 'gateway', 'dstport']);
  const span: Span = { mode: 'vxlan', vni: 0, gateway: '', peers: [] };
  const mode = el.attrs.mode;
  if (mode === undefined) add(`${P}@mode`, undefined, "missing required attribute 'mode' on <virtnet:span>");
  else if (mode === 'vxlan' || mode === 'evpn') span.mode = mode;
  else add(`${P}@mode`, mode, "expected 'vxlan' or 'evpn'");
  const vni = el.attrs.vni;
  if (vni === undefined) add(`${P}@vni`, undefined, "missing required attribute 'vni' on <virtnet:span>");
  else span.vni = decimal(add, `${P}@vni`, vni, 1, SPAN_MAX_VNI) ?? 0;
  const gw = el.attrs.gateway;
  if (gw === undefined)
    add(`${P}@gateway`, undefined, "missing required attribute 'gateway' on <virtnet:span>");
  else span.gateway = address(gw);
  const port = el.attrs.dstport;
  if (port !== undefined) {
    const n = decimal(add, `${P}@dstport`, port, 1, 65535);
    if (n !== undefined) span.dstport = n;
  }
  let i = 0;
  for (const c of childElements(el)) {
    if (c.ns !== ns || c.local !== 'peer') {
      add(`${P}/${c.name}`, undefined, `unknown element <${c.name}> inside <virtnet:span>`);
      continue;
    }
    const p = `${P}/peer[${i}]`;
    checkAttrs(add, c, p, ['address']);
    if (childElements(c).length > 0) add(p, undefined, '<virtnet:peer> has no child elements');
    const a = c.attrs.address;
    if (a === undefined)
      add(`${p}@address`, undefined, "missing required attribute 'address' on <virtnet:peer>");
    span.peers.push(a === undefined ? '' : address(a));
    i++;
  }
  return span;
}

/** Why `v` cannot be a VXLAN endpoint address, or undefined. */
function endpointWhy(v: string): string | undefined {
  const ip = parseIp(v);
  if (!ip) return 'expected an IPv4 or IPv6 address';
  const c = canonicalIp(v)!;
  if (ip.family === 'ipv4') {
    const first = Number(c.split('.')[0]);
    if (c === '0.0.0.0' || first === 127 || first >= 224)
      return 'a host address is needed (not unspecified, loopback, multicast or broadcast)';
  } else if (c === '::' || c === '::1' || c.startsWith('ff') || c.startsWith('fe80:')) {
    return 'a host address is needed (not unspecified, loopback, multicast or link-local)';
  }
  return undefined;
}

/** Value checks of the span and of what it needs from the rest of the network. */
export function validateSpan(net: Network): Problem[] {
  const s = net.span;
  if (!s) return [];
  const out: Problem[] = [];
  const add = (path: string, value: string | undefined, reason: string) => out.push({ path, value, reason });
  if (net.forward.mode === 'bridge')
    add(
      `${P}`,
      undefined,
      "a span needs a bridge virtnet creates (forward mode nat, route, open or isolated), not forward mode 'bridge'",
    );
  let family: IpFamily | undefined;
  if (s.gateway !== '') {
    const why = endpointWhy(s.gateway);
    if (why) add(`${P}@gateway`, s.gateway, why);
    else family = parseIp(s.gateway)!.family;
  }
  if (s.peers.length === 0)
    add(`${P}/peer`, undefined, 'a span needs at least one <virtnet:peer address> (a member host)');
  const seen = new Set<string>([s.gateway]);
  s.peers.forEach((a, i) => {
    const p = `${P}/peer[${i}]@address`;
    if (a === '') return;
    const why = endpointWhy(a);
    if (why) add(p, a, why);
    else if (family && parseIp(a)!.family !== family)
      add(p, a, `every host of a span uses the gateway's address family (${family})`);
    else if (a === s.gateway) add(p, a, 'this is the gateway address; list only the member hosts as peers');
    else if (seen.has(a)) add(p, a, 'this host is listed twice');
    seen.add(a);
  });
  return out;
}

/** The span as XML lines (indented by `ind`), in the prefix `virtnet`. */
export function formatSpanXml(s: Span, ind: string): string[] {
  let open = `${ind}<virtnet:span mode='${s.mode}' vni='${s.vni}' gateway='${escapeAttr(s.gateway)}'`;
  if (s.dstport !== undefined) open += ` dstport='${s.dstport}'`;
  const out = [`${open}>`];
  for (const p of s.peers) out.push(`${ind}  <virtnet:peer address='${escapeAttr(p)}'/>`);
  out.push(`${ind}</virtnet:span>`);
  return out;
}

export type SpanRoleName = 'gateway' | 'member';

export interface SpanRole {
  role: SpanRoleName;
  /** This host's address in the span (the VXLAN source address). */
  local: string;
  /** The other hosts' addresses (the VXLAN flood list). */
  remotes: string[];
}

/**
 * This host's role in the span: the gateway when the gateway address is one of `localAddrs`, a member
 * when one peer address is. Throws a one-line Error when none or more than one is local.
 */
export function spanRole(net: Network, localAddrs: readonly string[]): SpanRole {
  const s = net.span;
  if (!s) throw new Error(`network ${net.name} has no <virtnet:span>`);
  const mine = new Set(localAddrs.map((a) => canonicalIp(a) ?? a));
  const all = [s.gateway, ...s.peers];
  const local = all.filter((a) => mine.has(a));
  if (local.length === 0)
    throw new Error(
      `network ${net.name}: none of the span's addresses (gateway ${s.gateway}, peers ${s.peers.join(', ')}) is an address of this host`,
    );
  if (local.length > 1)
    throw new Error(
      `network ${net.name}: more than one of the span's addresses is local (${local.join(', ')}); each host must own exactly one`,
    );
  const me = local[0]!;
  return { role: me === s.gateway ? 'gateway' : 'member', local: me, remotes: all.filter((a) => a !== me) };
}

/**
 * A member's own bridge MAC: the gateway's bridge carries the network's `<mac>` (guests learn it as
 * their router), so a member bridge with the same MAC would swallow the frames guests send to the
 * router. Derived from the span and the member's address only, so it is stable across restarts.
 */
export function memberBridgeMac(s: Span, local: string): string {
  const h = createHash('sha256').update(`virtnet-span|${s.vni}|${s.gateway}|${local}`).digest();
  const hex = (b: number) => b.toString(16).padStart(2, '0');
  return `52:54:00:${hex(h[0]!)}:${hex(h[1]!)}:${hex(h[2]!)}`;
}

/**
 * What this host runs of a spanning network: the gateway runs it as defined; a member runs an
 * isolated bridge without addresses, routes, DNS, DHCP or NAT, with its own MAC. Idempotent.
 */
export function spanHostNetwork(net: Network, role: SpanRole): Network {
  if (!net.span || role.role === 'gateway') return net;
  const { dns: _dns, domain: _domain, mac: _mac, ...rest } = net;
  return {
    ...rest,
    forward: { mode: 'none', interfaces: [] },
    ips: [],
    routes: [],
    dnsmasqOptions: [],
    mac: memberBridgeMac(net.span, role.local),
  };
}
