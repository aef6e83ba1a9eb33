/**
 * libvirt domain XML, as much as virtnet's hooks need: the domain's name and uuid, every `<interface>`
 * (type, source, MAC, tap name, model, position) and virtnet's own per-domain settings from
 * `<metadata>` (see domain-metadata.ts for the namespace). Also the network hook's stdin
 * (`<hookData><network>…</network>[<networkport>…</networkport>]</hookData>`).
 *
 * Works on every stage of the hook's stdin: at `prepare` interfaces have no `<target dev>` yet; at
 * `stopped`/`release` the tap and the runtime `bridge=` are gone again.
 *
 * Pure: no I/O. Throws only ValidationError (element path, value, reason); everything else in the
 * document that virtnet does not use is ignored.
 */

import { ValidationError } from '../errors.js';
import {
  attr,
  checkHostname,
  checkIfname,
  checkLooseName,
  checkToken,
  checkUuid,
  elems,
  Problems,
  parseVirtnetDomainElement,
  resolveMatch,
  text,
  VIRTNET_DOMAIN_NS,
  VIRTNET_DOMAIN_NS_PREFIX,
  type VirtnetDomainSettings,
  type VirtnetInterfaceSettings,
} from './domain-metadata.js';
import { checkMac } from './validators.js';
import { childElements, parseXmlDocument, type XmlElement } from './xml.js';

export type {
  InterfaceMatch,
  PortForward,
  VirtnetDomainSettings,
  VirtnetInterfaceSettings,
} from './domain-metadata.js';
export { VIRTNET_DOMAIN_NS } from './domain-metadata.js';

/** Interface types virtnet acts on; anything else (direct, user, vhostuser, hostdev, …) is 'other'. */
export type DomainInterfaceType = 'network' | 'bridge' | 'ethernet' | 'other';

export interface DomainInterfaceSource {
  /** `type='network'`: the libvirt network's name. */
  network?: string;
  /** `type='bridge'` (and `type='network'` while running): the bridge. */
  bridge?: string;
  /** `type='ethernet'`/`direct`: the host device. */
  dev?: string;
  /** `type='network'` while running: libvirt's network port uuid. */
  portid?: string;
}

export interface DomainInterface {
  /** 0-based position among the domain's `<interface>` elements. */
  index: number;
  type: DomainInterfaceType;
  /** The type as written (differs from `type` only when `type` is 'other'). */
  rawType: string;
  /** Lower-case. Absent only in hand-written XML (libvirt always assigns one). */
  mac?: string;
  source: DomainInterfaceSource;
  /** The tap (`<target dev>`): present from the `start` hook on. */
  target?: string;
  /** `<model type>`. */
  model?: string;
  /** virtnet's settings for this interface from `<metadata>` (matched by MAC or index). */
  virtnet?: VirtnetInterfaceSettings;
}

export interface Domain {
  name: string;
  /** Canonical lower-case dashed form. */
  uuid?: string;
  /** Running domain's id (`<domain id=…>`). */
  id?: number;
  interfaces: DomainInterface[];
  /** virtnet's `<metadata>` settings as written (each entry also appears on its interface). */
  virtnet?: VirtnetDomainSettings;
  /** Things in the document that were deliberately not applied. */
  warnings: string[];
}

/** What the network hook receives on stdin. */
export interface NetworkHookData {
  network: {
    name: string;
    uuid?: string;
    bridge?: string;
    /** `<forward mode>`; absent for an isolated network. */
    forwardMode?: string;
  };
  /** Present for `port-created` / `port-deleted`. */
  port?: {
    uuid?: string;
    owner?: { name: string; uuid?: string };
    mac?: string;
    plug?: { type: string; bridge?: string };
  };
}

/**
 * The document's root element, which must be `<root>` (xml.ts refuses DOCTYPEs, entity declarations,
 * CDATA and non-XML characters up front). Problems are reported under `root`.
 */
function parseDocument(xml: string, root: string): XmlElement {
  let el: XmlElement;
  try {
    el = parseXmlDocument(xml);
  } catch (e) {
    if (e instanceof ValidationError)
      throw new ValidationError(e.problems.map((p) => (p.path === 'xml' ? { ...p, path: root } : p)));
    throw e;
  }
  if (el.name !== root || el.ns !== '')
    throw ValidationError.one(
      root,
      el.name,
      `expected exactly one <${root}> root element, found <${el.name}>`,
    );
  return el;
}

/**
 * Parse a libvirt domain XML document (any stage of the qemu hook's stdin, or `virsh dumpxml`).
 * @throws ValidationError naming every problem found.
 */
export function parseDomainXml(xml: string): Domain {
  try {
    return parseDomainUnsafe(xml);
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    // Defensive: parsing must never raise anything but ValidationError.
    throw ValidationError.one(
      'domain',
      undefined,
      `cannot parse: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

function parseDomainUnsafe(xml: string): Domain {
  const root = parseDocument(xml, 'domain');
  const problems = new Problems();
  const warnings: string[] = [];

  const nameEls = elems(root, 'name');
  const rawName = nameEls.length === 1 ? text(nameEls[0]!) : undefined;
  let name: string | undefined;
  if (nameEls.length > 1) problems.add('domain/name', undefined, 'more than one <name>');
  else if (rawName === undefined) problems.add('domain/name', undefined, 'the domain needs a <name>');
  else name = problems.check('domain/name', rawName, checkLooseName);

  const uuidEls = elems(root, 'uuid');
  let uuid: string | undefined;
  if (uuidEls.length > 1) problems.add('domain/uuid', undefined, 'more than one <uuid>');
  else if (uuidEls.length === 1) uuid = problems.check('domain/uuid', text(uuidEls[0]!) ?? '', checkUuid);

  const idRaw = attr(root, 'id');
  let id: number | undefined;
  if (idRaw !== undefined) {
    if (/^[0-9]{1,9}$/.test(idRaw)) id = Number(idRaw);
    else problems.add('domain@id', idRaw, 'not a domain id (a non-negative integer)');
  }

  const interfaces: DomainInterface[] = [];
  for (const devices of elems(root, 'devices')) {
    for (const ie of elems(devices, 'interface')) {
      const iface = parseInterface(ie, interfaces.length, problems, warnings);
      interfaces.push(iface);
    }
  }
  const seenMac = new Map<string, number>();
  for (const f of interfaces) {
    if (!f.mac) continue;
    const prev = seenMac.get(f.mac);
    if (prev !== undefined)
      problems.add(
        `domain/devices/interface[${f.index}]/mac@address`,
        f.mac,
        `same MAC as interface[${prev}]`,
      );
    else seenMac.set(f.mac, f.index);
  }

  const virtnet = parseMetadata(root, interfaces, problems, warnings);

  if (problems.list.length) throw new ValidationError(problems.list);
  const domain: Domain = { name: name!, interfaces, warnings };
  if (uuid !== undefined) domain.uuid = uuid;
  if (id !== undefined) domain.id = id;
  if (virtnet) {
    domain.virtnet = virtnet;
    for (const entry of virtnet.interfaces) {
      const i = resolveMatch(entry.match, interfaces);
      if (i !== undefined) interfaces[i]!.virtnet = entry;
    }
  }
  return domain;
}

function parseInterface(
  ie: XmlElement,
  index: number,
  problems: Problems,
  warnings: string[],
): DomainInterface {
  const path = `domain/devices/interface[${index}]`;
  const rawType = attr(ie, 'type');
  let type: DomainInterfaceType = 'other';
  if (rawType === undefined) problems.add(`${path}@type`, undefined, 'the interface needs a type');
  else if (rawType === 'network' || rawType === 'bridge' || rawType === 'ethernet') type = rawType;
  else problems.check(`${path}@type`, rawType, checkToken);
  const handled = type !== 'other';
  if (!handled && rawType !== undefined)
    warnings.push(`${path}: interface type '${rawType}' is not handled by virtnet (ignored)`);
  const iface: DomainInterface = { index, type, rawType: rawType ?? '', source: {} };

  const macEls = elems(ie, 'mac');
  if (macEls.length > 1) problems.add(`${path}/mac`, undefined, 'more than one <mac>');
  const macRaw = macEls[0] ? attr(macEls[0], 'address') : undefined;
  if (macEls[0] && macRaw === undefined)
    problems.add(`${path}/mac@address`, undefined, '<mac> needs address=');
  if (macRaw !== undefined) {
    const mac = problems.check(`${path}/mac@address`, macRaw, checkMac);
    if (mac !== undefined) iface.mac = mac;
  }

  // What virtnet does not act on must not stop a domain from starting: only warn about it.
  const soft = (p: string, v: string, checker: (s: string) => string): string | undefined => {
    if (handled) return problems.check(p, v, checker);
    const local = new Problems();
    const r = local.check(p, v, checker);
    for (const x of local.list) warnings.push(`${x.path}: ${x.reason} (ignored)`);
    return r;
  };

  const src = elems(ie, 'source')[0];
  if (src && handled) {
    const network = attr(src, 'network');
    if (network !== undefined)
      iface.source.network = problems.check(`${path}/source@network`, network, checkLooseName);
    const bridge = attr(src, 'bridge');
    if (bridge !== undefined)
      iface.source.bridge = problems.check(`${path}/source@bridge`, bridge, checkIfname);
    const dev = attr(src, 'dev');
    if (dev !== undefined) iface.source.dev = problems.check(`${path}/source@dev`, dev, checkIfname);
    const portid = attr(src, 'portid');
    if (portid !== undefined)
      iface.source.portid = problems.check(`${path}/source@portid`, portid, checkUuid);
    for (const k of ['network', 'bridge', 'dev', 'portid'] as const)
      if (iface.source[k] === undefined) delete iface.source[k];
  }

  const tgt = elems(ie, 'target')[0];
  const dev = tgt ? attr(tgt, 'dev') : undefined;
  if (dev !== undefined) {
    const t = soft(`${path}/target@dev`, dev, checkIfname);
    if (t !== undefined) iface.target = t;
  }
  const mdl = elems(ie, 'model')[0];
  const model = mdl ? attr(mdl, 'type') : undefined;
  if (model !== undefined) {
    const m = soft(`${path}/model@type`, model, checkToken);
    if (m !== undefined) iface.model = m;
  }
  return iface;
}

function parseMetadata(
  root: XmlElement,
  interfaces: DomainInterface[],
  problems: Problems,
  warnings: string[],
): VirtnetDomainSettings | undefined {
  let found: VirtnetDomainSettings | undefined;
  let foundPath: string | undefined;
  const mds = elems(root, 'metadata');
  mds.forEach((md, m) => {
    const seen = new Map<string, number>();
    for (const el of childElements(md)) {
      const n = seen.get(el.name) ?? 0;
      seen.set(el.name, n + 1);
      if (!el.ns.startsWith(VIRTNET_DOMAIN_NS_PREFIX)) continue;
      const path = `domain/metadata${mds.length > 1 ? `[${m}]` : ''}/${el.name}${n ? `[${n}]` : ''}`;
      if (el.ns !== VIRTNET_DOMAIN_NS) {
        warnings.push(`${path}: virtnet metadata namespace '${el.ns}' is not supported (ignored)`);
        continue;
      }
      if (el.local !== 'domain') {
        problems.add(path, undefined, 'expected <domain> in the virtnet namespace');
        continue;
      }
      if (found) {
        problems.add(path, undefined, `more than one virtnet metadata element (first: ${foundPath})`);
        continue;
      }
      foundPath = path;
      found = parseVirtnetDomainElement(el, path, interfaces, problems);
    }
  });
  return found;
}

/**
 * The DNS name a domain's interface should resolve as: the metadata's `name`, else the domain's name
 * when it is a valid host name, else undefined.
 */
export function dnsNameFor(domain: Domain, iface: DomainInterface): string | undefined {
  if (iface.virtnet?.name) return iface.virtnet.name;
  try {
    return checkHostname(domain.name);
  } catch {
    return undefined;
  }
}

/**
 * Parse the network hook's stdin: `<hookData><network>…</network>[<networkport>…</networkport>]</hookData>`.
 * Only what the hook needs: the network's name, uuid, bridge and forward mode; the port's owner
 * domain, MAC and plug.
 * @throws ValidationError
 */
export function parseNetworkHookData(xml: string): NetworkHookData {
  try {
    return parseHookDataUnsafe(xml);
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    throw ValidationError.one(
      'hookData',
      undefined,
      `cannot parse: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

function parseHookDataUnsafe(xml: string): NetworkHookData {
  const root = parseDocument(xml, 'hookData');
  const problems = new Problems();
  const nets = elems(root, 'network');
  if (nets.length !== 1)
    throw ValidationError.one('hookData/network', undefined, 'expected exactly one <network>');
  const net = nets[0]!;
  const nameRaw = elems(net, 'name')[0];
  const nameText = nameRaw ? text(nameRaw) : undefined;
  let name: string | undefined;
  if (nameText === undefined) problems.add('hookData/network/name', undefined, 'the network needs a <name>');
  else name = problems.check('hookData/network/name', nameText, checkLooseName);
  const out: NetworkHookData = { network: { name: name ?? '' } };
  const uuidEl = elems(net, 'uuid')[0];
  if (uuidEl) {
    const u = problems.check('hookData/network/uuid', text(uuidEl) ?? '', checkUuid);
    if (u !== undefined) out.network.uuid = u;
  }
  const br = elems(net, 'bridge')[0];
  const brName = br ? attr(br, 'name') : undefined;
  if (brName !== undefined) {
    const b = problems.check('hookData/network/bridge@name', brName, checkIfname);
    if (b !== undefined) out.network.bridge = b;
  }
  const fwd = elems(net, 'forward')[0];
  if (fwd) {
    // libvirt: <forward/> without mode= is NAT.
    const m = problems.check('hookData/network/forward@mode', attr(fwd, 'mode') ?? 'nat', checkToken);
    if (m !== undefined) out.network.forwardMode = m;
  }

  const ports = elems(root, 'networkport');
  if (ports.length > 1) problems.add('hookData/networkport', undefined, 'more than one <networkport>');
  const port = ports[0];
  if (port) {
    const p: NonNullable<NetworkHookData['port']> = {};
    const pu = elems(port, 'uuid')[0];
    if (pu) {
      const u = problems.check('hookData/networkport/uuid', text(pu) ?? '', checkUuid);
      if (u !== undefined) p.uuid = u;
    }
    const owner = elems(port, 'owner')[0];
    if (owner) {
      const on = elems(owner, 'name')[0];
      const onText = on ? text(on) : undefined;
      if (onText === undefined)
        problems.add('hookData/networkport/owner/name', undefined, 'the owner needs a <name>');
      else {
        const n = problems.check('hookData/networkport/owner/name', onText, checkLooseName);
        if (n !== undefined) p.owner = { name: n };
      }
      const ou = elems(owner, 'uuid')[0];
      if (ou && p.owner) {
        const u = problems.check('hookData/networkport/owner/uuid', text(ou) ?? '', checkUuid);
        if (u !== undefined) p.owner.uuid = u;
      }
    }
    const mac = elems(port, 'mac')[0];
    const macRaw = mac ? attr(mac, 'address') : undefined;
    if (macRaw !== undefined) {
      const m = problems.check('hookData/networkport/mac@address', macRaw, checkMac);
      if (m !== undefined) p.mac = m;
    }
    const plug = elems(port, 'plug')[0];
    if (plug) {
      const t = problems.check('hookData/networkport/plug@type', attr(plug, 'type') ?? '', checkToken);
      if (t !== undefined) {
        p.plug = { type: t };
        const pb = attr(plug, 'bridge');
        if (pb !== undefined) {
          const b = problems.check('hookData/networkport/plug@bridge', pb, checkIfname);
          if (b !== undefined) p.plug.bridge = b;
        }
      }
    }
    out.port = p;
  }
  if (problems.list.length) throw new ValidationError(problems.list);
  return out;
}
