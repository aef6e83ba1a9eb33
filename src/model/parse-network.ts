/**
 * Parse libvirt network XML (`formatnetwork`) into the typed `Network`, validate it and (optionally)
 * fill libvirt's defaults. `parseNetworkXml` throws ONLY `ValidationError`, carrying every problem
 * found (structural problems from this file, value problems from validate-network.ts), each with its
 * element path (e.g. `network/ip[0]/dhcp/host[1]@mac`), the value and the reason.
 *
 * Understood (see network.ts): `<network ipv6 trustGuestRxFilters>`, name, uuid (random v4 when
 * absent, as libvirt does), title, description, metadata (kept, re-serialized), forward (mode
 * nat/route/open/bridge/none; no <forward> = isolated; `<forward>` without mode = nat; dev;
 * `<interface dev>`; `<nat ipv6>` with `<address start end>` and `<port start end>`), bridge (name, stp,
 * delay, macTableManager, zone), mac, mtu, domain (name, localOnly, register), dns (enable,
 * forwardPlainNames, forwarder addr/port/domain, host ip + hostname, srv, txt), ip (family, address,
 * netmask|prefix, localPtr, tftp root, dhcp range + lease, host mac|id|name|ip + lease, bootp), route
 * (family, address, netmask|prefix, gateway, metric), and `<dnsmasq:options><dnsmasq:option value>`
 * in the namespace http://libvirt.org/schemas/network/dnsmasq/1.0 (any prefix).
 *
 * Known to libvirt but NOT implemented by virtnet:
 * - rejected with a ValidationError ("not supported by virtnet"), because silently dropping them
 *   would change what the network does or weaken isolation:
 *   forward modes private, vepa, passthrough, hostdev; forward mode bridge without a `<bridge name>`
 *   (macvtap "direct" networks); `<forward managed>`, `<forward><pf>`, `<forward><address>`,
 *   `<forward><driver>`; `<virtualport>`; `<vlan>`; `<portgroup>`; `<port isolated>`.
 * - accepted and ignored with a warning (recorded in `Network.ignored` and `ParseResult.warnings`):
 *   `<bandwidth>` (QoS is not applied).
 * - accepted and ignored silently: the `connections` attribute of `<network>` (status output only).
 *
 * Everything else is an error: unknown elements, unknown attributes (namespace declarations aside),
 * stray text, duplicated single elements, elements in foreign namespaces outside `<metadata>`.
 */

import { randomUUID } from 'node:crypto';
import { type Problem, ValidationError } from '../errors.js';
import { applyDefaults, type DefaultsOptions } from './defaults.js';
import { canonicalIp, netmaskToPrefix, parseIp } from './ip.js';
import type {
  Bootp,
  Dhcp,
  DhcpHost,
  DhcpRange,
  Dns,
  DnsForwarder,
  DnsHost,
  DnsSrv,
  DnsTxt,
  Domain,
  Forward,
  ForwardMode,
  IgnoredElement,
  IpDef,
  IpFamily,
  LeaseTime,
  Network,
  ParseResult,
  Route,
} from './network.js';
import { parseSpanElement, type Span } from './span.js';
import { validateNetwork } from './validate-network.js';
import { normalizeMac, normalizeUuid, parseUnsigned, validateMac, validateUuid } from './validators.js';
import {
  childElements,
  isElement,
  parseXmlDocument,
  serializeElement,
  textContent,
  type XmlElement,
} from './xml.js';

export const DNSMASQ_NS = 'http://libvirt.org/schemas/network/dnsmasq/1.0';
/**
 * virtnet's own extensions of the network XML (any prefix), top level like dnsmasq:options:
 * `<virtnet:bridge enslave='eth0'/>` — with `<forward mode='bridge'/><bridge name='br0'/>`, virtnet
 * creates br0 if it does not exist and enslaves the physical NIC eth0, moving its addresses and default
 * route onto the bridge (and back on stop). libvirt itself would refuse the element; virtnet only.
 */
export const VIRTNET_NET_NS = 'https://virtnet.org/xmlns/network/1';

export interface ParseOptions {
  /** Fill libvirt's defaults (bridge name, MAC, stp/delay) with `applyDefaults`. */
  fillDefaults?: boolean;
  /** Options for applyDefaults (used bridge names, injected randomness). */
  defaults?: DefaultsOptions;
  /** UUID generator for a network without <uuid> (default: node:crypto's randomUUID). */
  randomUuid?: () => string;
}

/** Collects problems and ignored elements while parsing (also used by update-network.ts). */
export class Ctx {
  readonly problems: Problem[] = [];
  readonly ignored: IgnoredElement[] = [];
  /** The forward mode was unknown or unsupported: skip the checks that depend on it. */
  badMode = false;
  add(path: string, value: string | undefined, reason: string): void {
    this.problems.push({ path, value, reason });
  }
}

const UNSUPPORTED = 'is not supported by virtnet';

function attrsOk(ctx: Ctx, el: XmlElement, path: string, allowed: readonly string[]): void {
  for (const [k, v] of Object.entries(el.attrs)) {
    if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
    if (!allowed.includes(k)) ctx.add(`${path}@${k}`, v, `unknown attribute '${k}' on <${el.name}>`);
  }
}

/** No non-whitespace text directly inside an element that holds only elements. */
function noText(ctx: Ctx, el: XmlElement, path: string): void {
  for (const c of el.children) {
    if (!isElement(c) && c.text.trim() !== '')
      ctx.add(path, c.text.trim(), `unexpected text inside <${el.name}>`);
  }
}

/** Group child elements by name, reporting unknown ones; returns name → elements. */
function children(
  ctx: Ctx,
  el: XmlElement,
  path: string,
  allowed: readonly string[],
): Map<string, XmlElement[]> {
  noText(ctx, el, path);
  const m = new Map<string, XmlElement[]>();
  for (const c of childElements(el)) {
    if (c.ns !== '' || !allowed.includes(c.name)) {
      ctx.add(`${path}/${c.name}`, undefined, `unknown element <${c.name}> inside <${el.name}>`);
      continue;
    }
    const list = m.get(c.name) ?? [];
    list.push(c);
    m.set(c.name, list);
  }
  return m;
}

/** At most one element of this name; returns it. */
function single(ctx: Ctx, m: Map<string, XmlElement[]>, name: string, path: string): XmlElement | undefined {
  const list = m.get(name);
  if (!list || list.length === 0) return undefined;
  if (list.length > 1) ctx.add(`${path}/${name}`, undefined, `<${name}> may appear only once`);
  return list[0];
}

function yesNo(ctx: Ctx, el: XmlElement, attr: string, path: string): boolean | undefined {
  const v = el.attrs[attr];
  if (v === undefined) return undefined;
  if (v === 'yes') return true;
  if (v === 'no') return false;
  ctx.add(`${path}@${attr}`, v, "expected 'yes' or 'no'");
  return undefined;
}

function uint(ctx: Ctx, el: XmlElement, attr: string, path: string): number | undefined {
  const v = el.attrs[attr];
  if (v === undefined) return undefined;
  const n = parseUnsigned(v);
  if (n === undefined) ctx.add(`${path}@${attr}`, v, 'expected a non-negative decimal integer');
  return n;
}

function required(ctx: Ctx, el: XmlElement, attr: string, path: string): string {
  const v = el.attrs[attr];
  if (v === undefined) {
    ctx.add(`${path}@${attr}`, undefined, `missing required attribute '${attr}' on <${el.name}>`);
    return '';
  }
  return v;
}

/** Canonical text of an address when valid; the raw text otherwise (validation reports it). */
function ipText(v: string): string {
  return canonicalIp(v) ?? v;
}

function macText(v: string): string {
  return validateMac(v) === undefined ? normalizeMac(v) : v;
}

function parseLease(ctx: Ctx, parent: XmlElement, path: string): LeaseTime | undefined {
  const m = children(ctx, parent, path, ['lease']);
  const el = single(ctx, m, 'lease', path);
  if (!el) return undefined;
  const p = `${path}/lease`;
  attrsOk(ctx, el, p, ['expiry', 'unit']);
  noText(ctx, el, p);
  if (childElements(el).length > 0) ctx.add(p, undefined, '<lease> has no child elements');
  const expiry = uint(ctx, el, 'expiry', p);
  if (expiry === undefined) return undefined; // libvirt: no expiry = no lease element
  const unitRaw = el.attrs.unit ?? 'minutes';
  if (unitRaw !== 'seconds' && unitRaw !== 'minutes' && unitRaw !== 'hours') {
    ctx.add(`${p}@unit`, unitRaw, "expected 'seconds', 'minutes' or 'hours'");
    return undefined;
  }
  return { expiry, unit: unitRaw };
}

function familyOf(address: string): IpFamily | undefined {
  return parseIp(address)?.family;
}

/** Classful default prefix libvirt uses for an IPv4 address without netmask/prefix; 64 for IPv6. */
export function defaultPrefix(address: string): number | undefined {
  const p = parseIp(address);
  if (!p) return undefined;
  if (p.family === 'ipv6') return 64;
  const first = Number(p.value >> 24n);
  if ((first & 0x80) === 0) return 8;
  if ((first & 0xc0) === 0x80) return 16;
  if ((first & 0xe0) === 0xc0) return 24;
  return undefined;
}

function parseIpDef(ctx: Ctx, el: XmlElement, path: string): IpDef {
  attrsOk(ctx, el, path, ['family', 'address', 'netmask', 'prefix', 'localPtr']);
  const m = children(ctx, el, path, ['dhcp', 'tftp']);
  const familyRaw = el.attrs.family;
  const address = ipText(required(ctx, el, 'address', path));
  let family: IpFamily = familyOf(address) ?? 'ipv4';
  if (familyRaw !== undefined) {
    if (familyRaw === 'ipv4' || familyRaw === 'ipv6') family = familyRaw;
    else ctx.add(`${path}@family`, familyRaw, "expected 'ipv4' or 'ipv6'");
  }
  const netmask = el.attrs.netmask;
  const prefixN = uint(ctx, el, 'prefix', path);
  const ip: IpDef = { family, address, prefix: 0 };
  if (familyRaw !== undefined) ip.explicitFamily = true;
  if (netmask !== undefined) {
    ip.netmask = netmask;
    if (prefixN !== undefined && prefixN > 0) {
      ctx.add(`${path}@prefix`, String(prefixN), 'an <ip> cannot have both a prefix and a netmask');
    }
    ip.prefix = netmaskToPrefix(netmask) ?? 0;
  } else if (prefixN !== undefined && prefixN > 0) {
    ip.prefix = prefixN;
    ip.explicitPrefix = true;
  } else {
    ip.prefix = defaultPrefix(address) ?? 0;
  }
  const localPtr = yesNo(ctx, el, 'localPtr', path);
  if (localPtr !== undefined) ip.localPtr = localPtr;
  const tftp = single(ctx, m, 'tftp', path);
  if (tftp) {
    const p = `${path}/tftp`;
    attrsOk(ctx, tftp, p, ['root']);
    children(ctx, tftp, p, []);
    if (family !== 'ipv4') ctx.add(p, undefined, '<tftp> is only supported in an IPv4 <ip>');
    if (tftp.attrs.root !== undefined) ip.tftpRoot = tftp.attrs.root;
  }
  const dhcpEl = single(ctx, m, 'dhcp', path);
  if (dhcpEl) ip.dhcp = parseDhcp(ctx, dhcpEl, `${path}/dhcp`, family);
  return ip;
}

/** One `<range start end>` (with optional `<lease>`). */
export function parseDhcpRangeElement(ctx: Ctx, r: XmlElement, p: string): DhcpRange {
  attrsOk(ctx, r, p, ['start', 'end']);
  const range: DhcpRange = {
    start: ipText(required(ctx, r, 'start', p)),
    end: ipText(required(ctx, r, 'end', p)),
  };
  const lease = parseLease(ctx, r, p);
  if (lease) range.lease = lease;
  return range;
}

/** One DHCP `<host mac|id|name|ip>` (with optional `<lease>`); completeness is checked by validation. */
export function parseDhcpHostElement(ctx: Ctx, h: XmlElement, p: string): DhcpHost {
  attrsOk(ctx, h, p, ['mac', 'id', 'name', 'ip']);
  const host: DhcpHost = {};
  if (h.attrs.mac !== undefined) host.mac = macText(h.attrs.mac);
  if (h.attrs.id !== undefined) host.id = h.attrs.id;
  if (h.attrs.name !== undefined) host.name = h.attrs.name;
  if (h.attrs.ip !== undefined) host.ip = ipText(h.attrs.ip);
  const lease = parseLease(ctx, h, p);
  if (lease) host.lease = lease;
  return host;
}

function parseDhcp(ctx: Ctx, el: XmlElement, path: string, family: IpFamily): Dhcp {
  attrsOk(ctx, el, path, []);
  const m = children(ctx, el, path, ['range', 'host', 'bootp']);
  const dhcp: Dhcp = { ranges: [], hosts: [] };
  (m.get('range') ?? []).forEach((r, i) => {
    dhcp.ranges.push(parseDhcpRangeElement(ctx, r, `${path}/range[${i}]`));
  });
  (m.get('host') ?? []).forEach((h, i) => {
    dhcp.hosts.push(parseDhcpHostElement(ctx, h, `${path}/host[${i}]`));
  });
  const bootp = single(ctx, m, 'bootp', path);
  // libvirt reads <bootp> only in an IPv4 <ip> (and ignores it in IPv6).
  if (bootp && family === 'ipv4') {
    const p = `${path}/bootp`;
    attrsOk(ctx, bootp, p, ['file', 'server']);
    children(ctx, bootp, p, []);
    const b: Bootp = { file: required(ctx, bootp, 'file', p) };
    if (bootp.attrs.server !== undefined) b.server = ipText(bootp.attrs.server);
    dhcp.bootp = b;
  }
  return dhcp;
}

function parseRoute(ctx: Ctx, el: XmlElement, path: string): Route {
  attrsOk(ctx, el, path, ['family', 'address', 'netmask', 'prefix', 'gateway', 'metric']);
  children(ctx, el, path, []);
  const address = ipText(required(ctx, el, 'address', path));
  const gateway = ipText(required(ctx, el, 'gateway', path));
  const familyRaw = el.attrs.family;
  let family: IpFamily = familyOf(address) ?? 'ipv4';
  if (familyRaw !== undefined) {
    if (familyRaw === 'ipv4' || familyRaw === 'ipv6') family = familyRaw;
    else ctx.add(`${path}@family`, familyRaw, "expected 'ipv4' or 'ipv6'");
  }
  const route: Route = { family, address, gateway, prefix: 0 };
  if (familyRaw !== undefined) route.explicitFamily = true;
  const netmask = el.attrs.netmask;
  const prefixN = uint(ctx, el, 'prefix', path);
  if (netmask !== undefined) {
    route.netmask = netmask;
    if (prefixN !== undefined)
      ctx.add(`${path}@prefix`, String(prefixN), 'a <route> cannot have both a prefix and a netmask');
    route.prefix = netmaskToPrefix(netmask) ?? 0;
  } else if (prefixN !== undefined) {
    route.prefix = prefixN;
    route.explicitPrefix = true;
  } else {
    route.prefix = family === 'ipv6' ? 64 : (defaultPrefix(address) ?? 0);
  }
  const metric = uint(ctx, el, 'metric', path);
  if (metric !== undefined) route.metric = metric;
  return route;
}

const FORWARD_MODES: readonly ForwardMode[] = ['nat', 'route', 'open', 'bridge', 'none'];
const UNSUPPORTED_MODES = ['private', 'vepa', 'passthrough', 'hostdev'];

function parseForward(ctx: Ctx, el: XmlElement, path: string): Forward {
  attrsOk(ctx, el, path, ['mode', 'dev', 'managed']);
  if (el.attrs.managed !== undefined)
    ctx.add(`${path}@managed`, el.attrs.managed, `<forward managed> ${UNSUPPORTED}`);
  noText(ctx, el, path);
  const modeRaw = el.attrs.mode ?? 'nat';
  let mode: ForwardMode = 'nat';
  if ((FORWARD_MODES as readonly string[]).includes(modeRaw)) mode = modeRaw as ForwardMode;
  else if (UNSUPPORTED_MODES.includes(modeRaw)) {
    ctx.badMode = true;
    ctx.add(`${path}@mode`, modeRaw, `forward mode '${modeRaw}' ${UNSUPPORTED} (it needs SR-IOV or macvtap)`);
  } else {
    ctx.badMode = true;
    ctx.add(`${path}@mode`, modeRaw, `unknown forward mode '${modeRaw}'`);
  }
  const fwd: Forward = { mode, interfaces: [] };
  const dev = el.attrs.dev;
  if (dev !== undefined) fwd.interfaces.push(dev);
  let natCount = 0;
  let ifIndex = 0;
  for (const c of childElements(el)) {
    if (c.ns !== '') {
      ctx.add(`${path}/${c.name}`, undefined, `unknown element <${c.name}> inside <forward>`);
      continue;
    }
    if (c.name === 'interface') {
      const p = `${path}/interface[${ifIndex}]`;
      attrsOk(ctx, c, p, ['dev']);
      children(ctx, c, p, []);
      const d = required(ctx, c, 'dev', p);
      if (ifIndex === 0 && dev !== undefined) {
        if (d !== dev) ctx.add(`${p}@dev`, d, `<forward dev='${dev}'> must match the first <interface dev>`);
      } else if (fwd.interfaces.includes(d)) {
        ctx.add(`${p}@dev`, d, 'an interface may be listed only once in <forward>');
      } else fwd.interfaces.push(d);
      ifIndex++;
    } else if (c.name === 'nat') {
      natCount++;
      const p = `${path}/nat`;
      if (natCount > 1) {
        ctx.add(p, undefined, '<nat> may appear only once');
        continue;
      }
      if (mode !== 'nat' && !ctx.badMode)
        ctx.add(p, undefined, "<nat> can only be used when <forward> mode is 'nat'");
      fwd.nat = parseNat(ctx, c, p);
    } else if (c.name === 'pf' || c.name === 'address' || c.name === 'driver') {
      ctx.add(
        `${path}/${c.name}`,
        undefined,
        `<forward><${c.name}> ${UNSUPPORTED} (SR-IOV / PCI passthrough)`,
      );
    } else {
      ctx.add(`${path}/${c.name}`, undefined, `unknown element <${c.name}> inside <forward>`);
    }
  }
  if (fwd.interfaces.length > 0) fwd.dev = fwd.interfaces[0];
  return fwd;
}

function parseNat(ctx: Ctx, el: XmlElement, path: string): NonNullable<Forward['nat']> {
  attrsOk(ctx, el, path, ['ipv6']);
  const m = children(ctx, el, path, ['address', 'port']);
  const nat: NonNullable<Forward['nat']> = {};
  const ipv6 = yesNo(ctx, el, 'ipv6', path);
  if (ipv6 !== undefined) nat.ipv6 = ipv6;
  const addr = single(ctx, m, 'address', path);
  if (addr) {
    const p = `${path}/address`;
    attrsOk(ctx, addr, p, ['start', 'end']);
    children(ctx, addr, p, []);
    nat.address = {
      start: ipText(required(ctx, addr, 'start', p)),
      end: ipText(required(ctx, addr, 'end', p)),
    };
  }
  const port = single(ctx, m, 'port', path);
  if (port) {
    const p = `${path}/port`;
    attrsOk(ctx, port, p, ['start', 'end']);
    children(ctx, port, p, []);
    required(ctx, port, 'start', p);
    required(ctx, port, 'end', p);
    nat.port = {
      start: uint(ctx, port, 'start', p) ?? Number.NaN,
      end: uint(ctx, port, 'end', p) ?? Number.NaN,
    };
  }
  return nat;
}

/**
 * One DNS `<host ip><hostname>…</host>`. With `partial` (update/delete lookups, like libvirt's
 * partialOkay) the ip may be missing; the value checks are validation's.
 */
export function parseDnsHostElement(ctx: Ctx, h: XmlElement, p: string, partial: boolean): DnsHost {
  attrsOk(ctx, h, p, ['ip']);
  const hm = children(ctx, h, p, ['hostname']);
  const ip = h.attrs.ip;
  if (ip === undefined && !partial) required(ctx, h, 'ip', p);
  const host: DnsHost = { ip: ip === undefined ? '' : ipText(ip), hostnames: [] };
  (hm.get('hostname') ?? []).forEach((n, j) => {
    const np = `${p}/hostname[${j}]`;
    attrsOk(ctx, n, np, []);
    if (childElements(n).length > 0) ctx.add(np, undefined, '<hostname> holds text only');
    host.hostnames.push(textContent(n));
  });
  if (partial && ip === undefined && host.hostnames.length === 0) {
    ctx.add(p, undefined, 'a DNS host needs an ip or a hostname');
  }
  return host;
}

/** One DNS `<srv>`; with `partial`, service and protocol may be missing (lookups). */
export function parseDnsSrvElement(ctx: Ctx, s: XmlElement, p: string, partial: boolean): DnsSrv {
  attrsOk(ctx, s, p, ['service', 'protocol', 'domain', 'target', 'port', 'priority', 'weight']);
  children(ctx, s, p, []);
  const srv: DnsSrv = { protocol: partial ? (s.attrs.protocol ?? '') : required(ctx, s, 'protocol', p) };
  if (partial) {
    if (s.attrs.service !== undefined) srv.service = s.attrs.service;
  } else srv.service = required(ctx, s, 'service', p);
  if (s.attrs.domain !== undefined) srv.domain = s.attrs.domain;
  if (s.attrs.target !== undefined) srv.target = s.attrs.target;
  for (const k of ['port', 'priority', 'weight'] as const) {
    const n = uint(ctx, s, k, p);
    if (n !== undefined) srv[k] = n;
  }
  return srv;
}

/** One DNS `<txt name value>`; with `partial` the value may be missing (lookups). */
export function parseDnsTxtElement(ctx: Ctx, t: XmlElement, p: string, partial: boolean): DnsTxt {
  attrsOk(ctx, t, p, ['name', 'value']);
  children(ctx, t, p, []);
  const name = required(ctx, t, 'name', p);
  const value = partial ? (t.attrs.value ?? '') : required(ctx, t, 'value', p);
  return { name, value };
}

function parseDns(ctx: Ctx, el: XmlElement, path: string): Dns {
  attrsOk(ctx, el, path, ['enable', 'forwardPlainNames']);
  const m = children(ctx, el, path, ['forwarder', 'host', 'srv', 'txt']);
  const dns: Dns = { forwarders: [], txts: [], hosts: [], srvs: [] };
  const enable = yesNo(ctx, el, 'enable', path);
  if (enable !== undefined) dns.enable = enable;
  const fpn = yesNo(ctx, el, 'forwardPlainNames', path);
  if (fpn !== undefined) dns.forwardPlainNames = fpn;
  (m.get('forwarder') ?? []).forEach((f, i) => {
    const p = `${path}/forwarder[${i}]`;
    attrsOk(ctx, f, p, ['addr', 'port', 'domain']);
    children(ctx, f, p, []);
    const fw: DnsForwarder = {};
    if (f.attrs.addr !== undefined) fw.addr = ipText(f.attrs.addr);
    if (f.attrs.domain !== undefined) fw.domain = f.attrs.domain;
    const port = uint(ctx, f, 'port', p);
    if (port !== undefined) fw.port = port;
    dns.forwarders.push(fw);
  });
  (m.get('host') ?? []).forEach((h, i) => {
    dns.hosts.push(parseDnsHostElement(ctx, h, `${path}/host[${i}]`, false));
  });
  (m.get('srv') ?? []).forEach((s, i) => {
    dns.srvs.push(parseDnsSrvElement(ctx, s, `${path}/srv[${i}]`, false));
  });
  (m.get('txt') ?? []).forEach((t, i) => {
    dns.txts.push(parseDnsTxtElement(ctx, t, `${path}/txt[${i}]`, false));
  });
  return dns;
}

function parseDnsmasqOptions(ctx: Ctx, el: XmlElement, path: string, out: string[]): void {
  attrsOk(ctx, el, path, []);
  noText(ctx, el, path);
  let i = 0;
  for (const c of childElements(el)) {
    const p = `${path}/option[${i}]`;
    if (c.ns !== DNSMASQ_NS || c.local !== 'option') {
      ctx.add(`${path}/${c.name}`, undefined, `unknown element <${c.name}> inside <${el.name}>`);
      continue;
    }
    attrsOk(ctx, c, p, ['value']);
    children(ctx, c, p, []);
    out.push(required(ctx, c, 'value', p));
    i++;
  }
}

const TOP = [
  'name',
  'uuid',
  'title',
  'description',
  'metadata',
  'forward',
  'bridge',
  'mac',
  'mtu',
  'domain',
  'dns',
  'ip',
  'route',
  'bandwidth',
  'vlan',
  'virtualport',
  'portgroup',
  'port',
];

/** Build the model from the root element, collecting structural problems into ctx. */
function buildNetwork(ctx: Ctx, root: XmlElement, opts: ParseOptions): Network {
  const P = 'network';
  attrsOk(ctx, root, P, ['ipv6', 'trustGuestRxFilters', 'connections']);
  noText(ctx, root, P);
  const m = new Map<string, XmlElement[]>();
  const dnsmasqOptions: string[] = [];
  let sawDnsmasqOptions = false;
  let enslave: string | undefined;
  let sawVirtnetBridge = false;
  let span: Span | undefined;
  for (const c of childElements(root)) {
    if (c.ns === VIRTNET_NET_NS && c.local === 'span') {
      if (span) ctx.add(`${P}/virtnet:span`, undefined, `<${c.name}> may appear only once`);
      else span = parseSpanElement((p, v, r) => ctx.add(p, v, r), c, VIRTNET_NET_NS);
      continue;
    }
    if (c.ns === VIRTNET_NET_NS && c.local === 'bridge') {
      const p = `${P}/virtnet:bridge`;
      if (sawVirtnetBridge) ctx.add(p, undefined, `<${c.name}> may appear only once`);
      sawVirtnetBridge = true;
      attrsOk(ctx, c, p, ['enslave']);
      children(ctx, c, p, []);
      enslave = required(ctx, c, 'enslave', p);
      continue;
    }
    if (c.ns === DNSMASQ_NS && c.local === 'options') {
      if (sawDnsmasqOptions) ctx.add(`${P}/${c.name}`, undefined, `<${c.name}> may appear only once`);
      sawDnsmasqOptions = true;
      parseDnsmasqOptions(ctx, c, `${P}/dnsmasq:options`, dnsmasqOptions);
      continue;
    }
    if (c.ns !== '' || !TOP.includes(c.name)) {
      ctx.add(`${P}/${c.name}`, undefined, `unknown element <${c.name}> inside <network>`);
      continue;
    }
    const list = m.get(c.name) ?? [];
    list.push(c);
    m.set(c.name, list);
  }

  const nameEl = single(ctx, m, 'name', P);
  let name = '';
  if (!nameEl) ctx.add(`${P}/name`, undefined, 'missing required element <name>');
  else {
    attrsOk(ctx, nameEl, `${P}/name`, []);
    if (childElements(nameEl).length > 0) ctx.add(`${P}/name`, undefined, '<name> holds text only');
    name = textContent(nameEl);
  }

  const uuidEl = single(ctx, m, 'uuid', P);
  let uuid: string;
  if (uuidEl) {
    attrsOk(ctx, uuidEl, `${P}/uuid`, []);
    const raw = textContent(uuidEl);
    const why = validateUuid(raw);
    if (why) {
      ctx.add(`${P}/uuid`, raw, why);
      uuid = raw;
    } else uuid = normalizeUuid(raw);
  } else uuid = (opts.randomUuid ?? randomUUID)();

  const net: Network = {
    name,
    uuid,
    forward: { mode: 'none', interfaces: [] },
    bridge: {},
    ips: [],
    routes: [],
    dnsmasqOptions,
    ignored: [],
  };
  if (enslave !== undefined) net.bridge.enslave = enslave;
  if (span) net.span = span;

  const ipv6 = yesNo(ctx, root, 'ipv6', P);
  if (ipv6 === true) net.ipv6 = true;
  const trust = yesNo(ctx, root, 'trustGuestRxFilters', P);
  if (trust !== undefined) net.trustGuestRxFilters = trust;

  const titleEl = single(ctx, m, 'title', P);
  if (titleEl) {
    attrsOk(ctx, titleEl, `${P}/title`, []);
    if (childElements(titleEl).length > 0) ctx.add(`${P}/title`, undefined, '<title> holds text only');
    net.title = textContent(titleEl);
  }
  const descEl = single(ctx, m, 'description', P);
  if (descEl) {
    attrsOk(ctx, descEl, `${P}/description`, []);
    if (childElements(descEl).length > 0)
      ctx.add(`${P}/description`, undefined, '<description> holds text only');
    net.description = textContent(descEl);
  }

  const metaEl = single(ctx, m, 'metadata', P);
  if (metaEl) {
    attrsOk(ctx, metaEl, `${P}/metadata`, []);
    noText(ctx, metaEl, `${P}/metadata`);
    const kids = childElements(metaEl);
    if (kids.length > 0) net.metadataXml = kids.flatMap(serializeElement).join('\n');
  }

  const fwdEl = single(ctx, m, 'forward', P);
  if (fwdEl) net.forward = parseForward(ctx, fwdEl, `${P}/forward`);

  const brEl = single(ctx, m, 'bridge', P);
  let bridgeHasStpOrDelay = false;
  if (brEl) {
    const p = `${P}/bridge`;
    attrsOk(ctx, brEl, p, ['name', 'stp', 'delay', 'macTableManager', 'zone']);
    children(ctx, brEl, p, []);
    if (brEl.attrs.name !== undefined) net.bridge.name = brEl.attrs.name;
    if (brEl.attrs.zone !== undefined) net.bridge.zone = brEl.attrs.zone;
    const stp = brEl.attrs.stp;
    if (stp !== undefined) {
      bridgeHasStpOrDelay = true;
      if (stp === 'on') net.bridge.stp = true;
      else if (stp === 'off') net.bridge.stp = false;
      else ctx.add(`${p}@stp`, stp, "expected 'on' or 'off'");
    }
    const delay = uint(ctx, brEl, 'delay', p);
    if (delay !== undefined) {
      net.bridge.delay = delay;
      if (delay > 0) bridgeHasStpOrDelay = true;
    }
    const mtm = brEl.attrs.macTableManager;
    if (mtm !== undefined) {
      if (mtm === 'kernel' || mtm === 'libvirt') net.bridge.macTableManager = mtm;
      else ctx.add(`${p}@macTableManager`, mtm, "expected 'kernel' or 'libvirt'");
    }
  }

  const macEl = single(ctx, m, 'mac', P);
  if (macEl) {
    attrsOk(ctx, macEl, `${P}/mac`, ['address']);
    children(ctx, macEl, `${P}/mac`, []);
    net.mac = macText(required(ctx, macEl, 'address', `${P}/mac`));
  }

  const mtuEl = single(ctx, m, 'mtu', P);
  if (mtuEl) {
    attrsOk(ctx, mtuEl, `${P}/mtu`, ['size']);
    children(ctx, mtuEl, `${P}/mtu`, []);
    required(ctx, mtuEl, 'size', `${P}/mtu`);
    const size = uint(ctx, mtuEl, 'size', `${P}/mtu`);
    if (size !== undefined && size > 0) net.mtu = size;
  }

  const domEl = single(ctx, m, 'domain', P);
  if (domEl) {
    const p = `${P}/domain`;
    attrsOk(ctx, domEl, p, ['name', 'localOnly', 'register']);
    children(ctx, domEl, p, []);
    const d: Domain = { name: required(ctx, domEl, 'name', p) };
    const lo = yesNo(ctx, domEl, 'localOnly', p);
    if (lo !== undefined) d.localOnly = lo;
    const reg = yesNo(ctx, domEl, 'register', p);
    if (reg !== undefined) d.register = reg;
    net.domain = d;
  }

  const dnsEl = single(ctx, m, 'dns', P);
  if (dnsEl) net.dns = parseDns(ctx, dnsEl, `${P}/dns`);

  (m.get('ip') ?? []).forEach((el, i) => {
    net.ips.push(parseIpDef(ctx, el, `${P}/ip[${i}]`));
  });
  (m.get('route') ?? []).forEach((el, i) => {
    net.routes.push(parseRoute(ctx, el, `${P}/route[${i}]`));
  });

  for (const el of m.get('bandwidth') ?? []) {
    net.ignored.push({ path: `${P}/bandwidth`, reason: 'QoS (<bandwidth>) is not applied by virtnet' });
    void el;
  }
  for (const n of ['vlan', 'virtualport', 'portgroup'] as const) {
    if (m.has(n)) ctx.add(`${P}/${n}`, undefined, `<${n}> ${UNSUPPORTED}`);
  }
  if (m.has('port')) ctx.add(`${P}/port`, undefined, `<port isolated> ${UNSUPPORTED}`);

  // Checks that tie elements to the forward mode (libvirt's parser does these).
  const mode = ctx.badMode ? undefined : net.forward.mode;
  if (mode === 'bridge') {
    if (!net.bridge.name && net.forward.interfaces.length > 0) {
      ctx.add(
        `${P}/forward@mode`,
        'bridge',
        `forward mode 'bridge' with <interface> devices (macvtap "direct") ${UNSUPPORTED}; give <bridge name> instead`,
      );
    } else if (!net.bridge.name) {
      ctx.add(
        `${P}/bridge@name`,
        undefined,
        "forward mode 'bridge' needs <bridge name='…'> (an existing host bridge)",
      );
    } else if (net.forward.interfaces.length > 0) {
      ctx.add(
        `${P}/forward@dev`,
        net.forward.dev,
        "forward mode 'bridge' can have a bridge name or a forward dev, not both",
      );
    }
    if (bridgeHasStpOrDelay || net.bridge.zone !== undefined) {
      ctx.add(
        `${P}/bridge`,
        undefined,
        'bridge delay/stp/zone are only allowed in open, route, nat and isolated mode',
      );
    }
    if (net.mtu !== undefined)
      ctx.add(`${P}/mtu@size`, String(net.mtu), "mtu is not allowed in forward mode 'bridge'");
  }
  if ((mode === 'nat' || mode === 'route') && net.ips.length === 0) {
    ctx.add(`${P}/ip`, undefined, `${mode} forwarding requested, but no <ip> address given`);
  }
  if ((mode === 'nat' || mode === 'route') && net.forward.interfaces.length > 1) {
    ctx.add(
      `${P}/forward/interface[1]`,
      net.forward.interfaces[1],
      'only one forwarding interface is supported',
    );
  }
  if (mode === 'open' && net.forward.interfaces.length > 0) {
    ctx.add(`${P}/forward@dev`, net.forward.dev, "a forward dev is not allowed with forward mode 'open'");
  }
  return net;
}

/** Keep the first problem per path+reason (parse and validate may see the same missing value). */
function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.path}\u0000${p.reason}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Parse, validate and (optionally) default a libvirt network XML document. Throws only ValidationError. */
export function parseNetworkXml(xml: string, opts: ParseOptions = {}): ParseResult {
  try {
    const root = parseXmlDocument(xml);
    if (root.name !== 'network' || root.ns !== '') {
      throw ValidationError.one(
        root.name,
        undefined,
        `expected root element <network>, found <${root.name}>`,
      );
    }
    const ctx = new Ctx();
    const net = buildNetwork(ctx, root, opts);
    net.ignored.push(...ctx.ignored);
    const structural = ctx.problems;
    // Value checks only for what parsed structurally (they report against the same paths).
    const problems = dedupe([...structural, ...validateNetwork(net)]);
    if (problems.length > 0) throw new ValidationError(problems);
    const network = opts.fillDefaults ? applyDefaults(net, opts.defaults) : net;
    return { network, warnings: network.ignored.map((i) => `${i.path}: ignored: ${i.reason}`) };
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    // Anything unexpected (a bug) still surfaces as bad input, never as another error type.
    throw ValidationError.one(
      'network',
      undefined,
      `cannot parse network XML: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}
