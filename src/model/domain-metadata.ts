/**
 * virtnet's per-domain settings, kept by libvirt inside the domain's `<metadata>` in virtnet's own XML
 * namespace (libvirt preserves foreign-namespace metadata verbatim and hands it to the hooks):
 *
 * ```xml
 * <metadata>
 *   <virtnet:domain xmlns:virtnet="https://virtnet.org/xmlns/domain/1">
 *     <virtnet:interface mac="52:54:00:aa:bb:01" network="default"
 *                        ip="192.168.122.50" ip6="fd00:1::50" name="web">
 *       <virtnet:forward proto="tcp" host-port="8080" guest-port="80"/>
 *       <virtnet:forward proto="udp" host-port="5353" host-address="203.0.113.7"/>
 *     </virtnet:interface>
 *   </virtnet:domain>
 * </metadata>
 * ```
 *
 * - `<virtnet:interface>` names one of the domain's `<interface>`s, by `mac` or by `index` (0-based
 *   position among the domain's `<interface>` elements) — exactly one of the two.
 * - `network`: the virtnet network a `type='ethernet'` tap is attached to (for `type='bridge'` the
 *   network is found from the bridge; for `type='network'` it is libvirt's).
 * - `ip` / `ip6`: the fixed IPv4 / IPv6 address reserved for that interface (DHCP host entry).
 * - `name`: the DNS host name (default: the domain's name when it is a valid host name).
 * - `<virtnet:forward>`: inbound port forward to this interface's fixed address. `proto` tcp|udp,
 *   `host-port` 1–65535, `guest-port` (default: host-port), optional `host-address` (only traffic to
 *   that host address is forwarded) and `family` ipv4|ipv6. Without `family` a forward applies to every
 *   family for which the interface has a fixed address; a forward always needs the fixed address of its
 *   family (the DNAT target).
 *
 * Unknown elements or attributes in this namespace are errors (the version is in the namespace URI).
 * The prefix is free (`virtnet:` is a convention); a default namespace (`<domain xmlns="…">`) works too.
 *
 * Pure: no I/O. Everything returned has been validated; bad input raises ValidationError.
 */

import { type Problem, ValidationError } from '../errors.js';
import { canonicalIp, isIpv4 } from './ip.js';
import type { IpFamily } from './network.js';
import {
  checkMac,
  checkNetworkName,
  hasControlChars,
  normalizeUuid,
  validateHostname,
  validateIfname,
  validateIp,
  validatePort,
  validateUuid,
} from './validators.js';
import type { L4Proto } from './values.js';
import { childElements, isElement, textContent, type XmlElement } from './xml.js';

export const VIRTNET_DOMAIN_NS = 'https://virtnet.org/xmlns/domain/1';
/** Any virtnet domain namespace (other versions are recognised so they can be reported, not applied). */
export const VIRTNET_DOMAIN_NS_PREFIX = 'https://virtnet.org/xmlns/domain/';

/** One inbound port forward: host:hostPort → guest:guestPort. */
export interface PortForward {
  proto: L4Proto;
  hostPort: number;
  guestPort: number;
  /** Only traffic to this host address is forwarded (canonical form). */
  hostAddress?: string;
  /** The families this forward applies to (resolved; never empty). */
  families: IpFamily[];
}

export type InterfaceMatch = { mac: string } | { index: number };

export interface VirtnetInterfaceSettings {
  /** Which `<interface>` of the domain this entry is for. */
  match: InterfaceMatch;
  /** virtnet network a `type='ethernet'` tap is attached to. */
  network?: string;
  /** Fixed IPv4 address (canonical). */
  ip?: string;
  /** Fixed IPv6 address (canonical). */
  ip6?: string;
  /** DNS host name. */
  name?: string;
  forwards: PortForward[];
}

export interface VirtnetDomainSettings {
  interfaces: VirtnetInterfaceSettings[];
}

// ---------------------------------------------------------------------------------------------------
// Tree access over src/model/xml.ts elements. Own-property lookups only (attribute names like
// `toString` must not reach the prototype).

/** Child elements with this qualified name (libvirt's own elements have no namespace). */
export function elems(el: XmlElement, name: string): XmlElement[] {
  return childElements(el).filter((c) => c.name === name);
}

/** Child elements in virtnet's domain namespace with this local name, whatever their prefix. */
export function virtnetElems(el: XmlElement, local: string): XmlElement[] {
  return childElements(el).filter((c) => c.ns === VIRTNET_DOMAIN_NS && c.local === local);
}

export function attr(el: XmlElement, name: string): string | undefined {
  return Object.hasOwn(el.attrs, name) ? el.attrs[name] : undefined;
}

/** The element's text (trimmed), or undefined when it has none. */
export function text(el: XmlElement): string | undefined {
  const t = textContent(el).trim();
  return t === '' ? undefined : t;
}

/** Text directly inside the element (not inside its children), trimmed. */
function ownText(el: XmlElement): string {
  return el.children
    .filter((c) => !isElement(c))
    .map((c) => (c as { text: string }).text)
    .join('')
    .trim();
}

/** Report attributes outside `allowed` (namespace declarations are always fine). */
function unknownAttrs(el: XmlElement, path: string, allowed: ReadonlySet<string>, problems: Problems): void {
  for (const a of Object.keys(el.attrs)) {
    if (a === 'xmlns' || a.startsWith('xmlns:') || allowed.has(a)) continue;
    problems.add(`${path}@${a}`, el.attrs[a], 'unknown attribute in the virtnet namespace');
  }
}

/** Report child elements other than `local` in virtnet's namespace, and stray text. */
function unknownChildren(el: XmlElement, path: string, local: string | undefined, problems: Problems): void {
  for (const c of childElements(el)) {
    if (local !== undefined && c.ns === VIRTNET_DOMAIN_NS && c.local === local) continue;
    problems.add(`${path}/${c.name}`, undefined, 'unknown element in the virtnet namespace');
  }
  const t = ownText(el);
  if (t) problems.add(path, t, 'unexpected text in the virtnet namespace');
}

// ---------------------------------------------------------------------------------------------------
// Value checks: thin adapters over src/model/validators.ts that return the normalized value or throw
// CheckFailed (so `Problems.check` can record path + value + reason).

function via(reason: string | undefined): void {
  if (reason !== undefined) fail(reason);
}

/** Linux interface name (≤ 15 bytes, no '/', ':', '%', whitespace, not starting with '-'). */
export function checkIfname(v: string): string {
  via(validateIfname(v));
  return v;
}

/** DNS host name (RFC 1123). */
export function checkHostname(v: string): string {
  via(validateHostname(v));
  return v;
}

/** UUID; returns the canonical dashed lower-case form. */
export function checkUuid(v: string): string {
  via(validateUuid(v));
  return normalizeUuid(v);
}

export function checkPort(v: string): number {
  via(validatePort(v));
  return Number(v);
}

/** IP address (optionally of one family); returns the canonical form. */
export function checkIp(v: string, family?: IpFamily): string {
  via(validateIp(v, family));
  const c = canonicalIp(v);
  if (c === undefined) fail('not an IP address');
  return c;
}

/** Free-text names (domain names): non-empty, ≤ 255, no control characters, no '/'. */
export function checkLooseName(v: string): string {
  if (v.length === 0) return fail('empty name');
  if (v.length > 255) return fail('name longer than 255 characters');
  if (hasControlChars(v)) return fail('name contains a control character');
  if (v.includes('/')) return fail("name contains '/'");
  return v;
}

/** A simple token (interface model types, interface types). */
export function checkToken(v: string): string {
  if (!/^[A-Za-z0-9_.+-]{1,64}$/.test(v)) return fail('must be 1-64 characters of A-Z a-z 0-9 _ . + -');
  return v;
}

// ---------------------------------------------------------------------------------------------------

/** A check failed: carries only the reason; the caller adds path and value. */
export class CheckFailed extends Error {}

function fail(reason: string): never {
  throw new CheckFailed(reason);
}

/** Collects problems; `check` runs a checker and records a problem instead of throwing. */
export class Problems {
  readonly list: Problem[] = [];
  add(path: string, value: string | undefined, reason: string): void {
    this.list.push({ path, value, reason });
  }
  check<T>(path: string, value: string, checker: (v: string) => T): T | undefined {
    try {
      return checker(value);
    } catch (e) {
      if (e instanceof CheckFailed) {
        this.add(path, value, e.message);
        return undefined;
      }
      // The shared checks of validators.ts name one field; here the caller's path names it.
      if (e instanceof ValidationError && e.problems.length === 1) {
        this.add(path, value, e.problems[0]!.reason);
        return undefined;
      }
      throw e;
    }
  }
}

/** What the metadata parser needs to know about the domain's interfaces to resolve matches. */
export interface InterfaceRef {
  index: number;
  mac?: string;
}

/**
 * Parse virtnet's namespace element (`<virtnet:domain>`); `path` is its path for problems.
 */
export function parseVirtnetDomainElement(
  el: XmlElement,
  path: string,
  ifaces: InterfaceRef[],
  problems: Problems,
): VirtnetDomainSettings {
  const settings: VirtnetDomainSettings = { interfaces: [] };
  unknownAttrs(el, path, new Set(), problems);
  unknownChildren(el, path, 'interface', problems);

  const seenMatch = new Map<number, string>();
  const forwards: { f: PortForward; path: string }[] = [];
  virtnetElems(el, 'interface').forEach((ie, i) => {
    const ipath = `${path}/${ie.name}[${i}]`;
    const parsed = parseInterfaceEntry(ie, ipath, problems);
    if (!parsed) return;
    const { entry, forwardPaths } = parsed;
    const target = resolveMatch(entry.match, ifaces);
    if (target === undefined) {
      const [k, v] = 'mac' in entry.match ? ['mac', entry.match.mac] : ['index', String(entry.match.index)];
      problems.add(`${ipath}@${k}`, v, `the domain has no <interface> with this ${k}`);
      return;
    }
    const prev = seenMatch.get(target);
    if (prev !== undefined) {
      problems.add(ipath, undefined, `names the same <interface> as ${prev}`);
      return;
    }
    seenMatch.set(target, ipath);
    settings.interfaces.push(entry);
    entry.forwards.forEach((f, j) => {
      forwards.push({ f, path: forwardPaths[j]! });
    });
  });

  // The same host port twice (same protocol, overlapping family and host address) cannot work.
  for (let a = 0; a < forwards.length; a++) {
    for (let b = a + 1; b < forwards.length; b++) {
      const x = forwards[a]!;
      const y = forwards[b]!;
      if (forwardsClash(x.f, y.f))
        problems.add(`${y.path}@host-port`, String(y.f.hostPort), `host port already forwarded by ${x.path}`);
    }
  }
  return settings;
}

/** Index into `ifaces` of the interface an entry names, or undefined. */
export function resolveMatch(match: InterfaceMatch, ifaces: InterfaceRef[]): number | undefined {
  if ('mac' in match) {
    const i = ifaces.findIndex((f) => f.mac === match.mac);
    return i < 0 ? undefined : i;
  }
  const i = ifaces.findIndex((f) => f.index === match.index);
  return i < 0 ? undefined : i;
}

function forwardsClash(a: PortForward, b: PortForward): boolean {
  if (a.proto !== b.proto || a.hostPort !== b.hostPort) return false;
  if (!a.families.some((f) => b.families.includes(f))) return false;
  return a.hostAddress === undefined || b.hostAddress === undefined || a.hostAddress === b.hostAddress;
}

const IFACE_ATTRS = new Set(['mac', 'index', 'network', 'ip', 'ip6', 'name']);
const FORWARD_ATTRS = new Set(['proto', 'host-port', 'guest-port', 'host-address', 'family']);

function parseInterfaceEntry(
  ie: XmlElement,
  ipath: string,
  problems: Problems,
): { entry: VirtnetInterfaceSettings; forwardPaths: string[] } | undefined {
  const before = problems.list.length;
  unknownAttrs(ie, ipath, IFACE_ATTRS, problems);
  unknownChildren(ie, ipath, 'forward', problems);

  const macRaw = attr(ie, 'mac');
  const indexRaw = attr(ie, 'index');
  let match: InterfaceMatch | undefined;
  if ((macRaw === undefined) === (indexRaw === undefined)) {
    problems.add(ipath, undefined, 'needs exactly one of mac= or index= to name the domain interface');
  } else if (macRaw !== undefined) {
    const mac = problems.check(`${ipath}@mac`, macRaw, checkMac);
    if (mac !== undefined) match = { mac };
  } else if (indexRaw !== undefined) {
    if (/^[0-9]{1,4}$/.test(indexRaw)) match = { index: Number(indexRaw) };
    else problems.add(`${ipath}@index`, indexRaw, 'not an interface index (0, 1, 2, …)');
  }

  const entry: VirtnetInterfaceSettings = { match: match ?? { index: -1 }, forwards: [] };
  const network = attr(ie, 'network');
  if (network !== undefined) entry.network = problems.check(`${ipath}@network`, network, checkNetworkName);
  const ip = attr(ie, 'ip');
  if (ip !== undefined) entry.ip = problems.check(`${ipath}@ip`, ip, (v) => checkIp(v, 'ipv4'));
  const ip6 = attr(ie, 'ip6');
  if (ip6 !== undefined) entry.ip6 = problems.check(`${ipath}@ip6`, ip6, (v) => checkIp(v, 'ipv6'));
  const name = attr(ie, 'name');
  if (name !== undefined) entry.name = problems.check(`${ipath}@name`, name, checkHostname);
  for (const k of ['network', 'ip', 'ip6', 'name'] as const) if (entry[k] === undefined) delete entry[k];

  const forwardPaths: string[] = [];
  virtnetElems(ie, 'forward').forEach((fe, j) => {
    const fpath = `${ipath}/${fe.name}[${j}]`;
    const f = parseForward(fe, fpath, { ip: ip !== undefined, ip6: ip6 !== undefined }, problems);
    if (f) {
      entry.forwards.push(f);
      forwardPaths.push(fpath);
    }
  });
  return problems.list.length === before ? { entry, forwardPaths } : undefined;
}

function parseForward(
  fe: XmlElement,
  fpath: string,
  has: { ip: boolean; ip6: boolean },
  problems: Problems,
): PortForward | undefined {
  const before = problems.list.length;
  unknownAttrs(fe, fpath, FORWARD_ATTRS, problems);
  unknownChildren(fe, fpath, undefined, problems);

  const protoRaw = attr(fe, 'proto');
  let proto: L4Proto | undefined;
  if (protoRaw === 'tcp' || protoRaw === 'udp') proto = protoRaw;
  else problems.add(`${fpath}@proto`, protoRaw, "proto must be 'tcp' or 'udp'");

  const hpRaw = attr(fe, 'host-port');
  let hostPort: number | undefined;
  if (hpRaw === undefined) problems.add(`${fpath}@host-port`, undefined, 'host-port is required');
  else hostPort = problems.check(`${fpath}@host-port`, hpRaw, checkPort);
  const gpRaw = attr(fe, 'guest-port');
  const guestPort = gpRaw === undefined ? hostPort : problems.check(`${fpath}@guest-port`, gpRaw, checkPort);

  const haRaw = attr(fe, 'host-address');
  const hostAddress =
    haRaw === undefined ? undefined : problems.check(`${fpath}@host-address`, haRaw, checkIp);
  const famRaw = attr(fe, 'family');
  let family: IpFamily | undefined;
  if (famRaw === 'ipv4' || famRaw === 'ipv6') family = famRaw;
  else if (famRaw !== undefined) problems.add(`${fpath}@family`, famRaw, "family must be 'ipv4' or 'ipv6'");

  let families: IpFamily[] = [];
  if (hostAddress !== undefined) {
    const hf: IpFamily = isIpv4(hostAddress) ? 'ipv4' : 'ipv6';
    if (family !== undefined && family !== hf)
      problems.add(`${fpath}@host-address`, haRaw, `host-address is not an ${family} address`);
    families = [hf];
  } else if (family !== undefined) {
    families = [family];
  } else {
    if (has.ip) families.push('ipv4');
    if (has.ip6) families.push('ipv6');
    if (!families.length)
      problems.add(
        fpath,
        undefined,
        'a port forward needs a fixed ip= or ip6= on its interface (the DNAT target)',
      );
  }
  for (const f of families) {
    if (f === 'ipv4' && !has.ip && (family !== undefined || hostAddress !== undefined))
      problems.add(fpath, undefined, 'an IPv4 port forward needs a fixed ip= on its interface');
    if (f === 'ipv6' && !has.ip6 && (family !== undefined || hostAddress !== undefined))
      problems.add(fpath, undefined, 'an IPv6 port forward needs a fixed ip6= on its interface');
  }
  if (
    problems.list.length !== before ||
    proto === undefined ||
    hostPort === undefined ||
    guestPort === undefined
  )
    return undefined;
  const f: PortForward = { proto, hostPort, guestPort, families };
  if (hostAddress !== undefined) f.hostAddress = hostAddress;
  return f;
}
