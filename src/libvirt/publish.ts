/**
 * Publishing a virtnet network into libvirt — the pure part: the bridge-mode XML virtnetd defines in
 * libvirt, how a libvirt network of the same name is classified (virtnet's own or foreign), and what
 * to run to bring libvirt in line. The effect adapter (virsh through the command runner) is separate.
 *
 * virtnet's own = same name, same UUID, `<forward mode='bridge'/>` on virtnet's bridge. Anything else
 * of that name is foreign and never touched: the caller reports it and names `virtnetctl import-libvirt`.
 */
import { ValidationError } from '../errors.js';
import { childElements, escapeAttr, escapeText, parseXmlDocument, textContent } from '../model/xml.js';

export interface PublishTarget {
  name: string;
  uuid: string;
  bridge: string;
}

/** The libvirt network virtnetd keeps defined while the virtnet network is active. */
export function publishedXml(t: PublishTarget): string {
  return [
    '<network>',
    `  <name>${escapeText(t.name)}</name>`,
    `  <uuid>${escapeText(t.uuid)}</uuid>`,
    "  <forward mode='bridge'/>",
    `  <bridge name='${escapeAttr(t.bridge)}'/>`,
    '</network>',
    '',
  ].join('\n');
}

/** The fields of a libvirt network definition that decide ownership. */
export interface LibvirtNetworkFacts {
  name: string;
  uuid: string;
  forwardMode: string;
  bridge: string;
}

/** Reads name, UUID, forward mode ('' = isolated, libvirt's default) and bridge name from libvirt's XML. */
export function libvirtNetworkFacts(xml: string): LibvirtNetworkFacts {
  const root = parseXmlDocument(xml);
  if (root.name !== 'network') {
    throw new ValidationError([
      { path: 'network', value: root.name, reason: 'root element must be <network>' },
    ]);
  }
  const facts: LibvirtNetworkFacts = { name: '', uuid: '', forwardMode: '', bridge: '' };
  for (const c of childElements(root)) {
    if (c.name === 'name') facts.name = textContent(c).trim();
    else if (c.name === 'uuid') facts.uuid = textContent(c).trim().toLowerCase();
    else if (c.name === 'forward') facts.forwardMode = c.attrs.mode ?? 'nat';
    else if (c.name === 'bridge') facts.bridge = c.attrs.name ?? '';
  }
  return facts;
}

export type Ownership = { kind: 'absent' } | { kind: 'own' } | { kind: 'foreign'; reason: string };

/** Is libvirt's network of this name virtnet's own published copy? `xml` undefined = not defined. */
export function classify(t: PublishTarget, xml: string | undefined): Ownership {
  if (xml === undefined) return { kind: 'absent' };
  let f: LibvirtNetworkFacts;
  try {
    f = libvirtNetworkFacts(xml);
  } catch (e) {
    return {
      kind: 'foreign',
      reason: `its XML cannot be read (${e instanceof Error ? e.message : String(e)})`,
    };
  }
  if (f.uuid !== t.uuid.toLowerCase())
    return { kind: 'foreign', reason: `its UUID is ${f.uuid || '(none)'}` };
  if (f.forwardMode !== 'bridge') {
    return { kind: 'foreign', reason: `its forward mode is ${f.forwardMode || '(isolated)'}, not bridge` };
  }
  if (f.bridge !== t.bridge)
    return { kind: 'foreign', reason: `its bridge is ${f.bridge || '(none)'}, not ${t.bridge}` };
  return { kind: 'own' };
}

/** libvirt's view of the network of that name (from `virsh net-info` and `net-dumpxml --inactive`). */
export interface LibvirtState {
  /** Inactive XML; undefined when no network of that name is defined. */
  xml?: string;
  active: boolean;
  autostart: boolean;
}

export type PublishStep =
  | { op: 'define'; xml: string }
  | { op: 'autostart' }
  | { op: 'start' }
  | { op: 'destroy' }
  | { op: 'undefine' };

export type PublishPlan = { ownership: Ownership; steps: PublishStep[] };

/**
 * What to do in libvirt for a virtnet network that is `want`:
 *  - 'active': defined (our XML), autostarted and active;
 *  - 'inactive': kept defined but stopped (a virtnet network that is stopped stays visible in libvirt,
 *    as a libvirt network that is stopped does; `virsh start` of a domain on it then fails clearly);
 *  - 'absent': undefined (the virtnet network was undefined).
 * A foreign network gets no steps.
 */
export function planPublish(
  t: PublishTarget,
  lv: LibvirtState,
  want: 'active' | 'inactive' | 'absent',
): PublishPlan {
  const ownership = classify(t, lv.xml);
  if (ownership.kind === 'foreign') return { ownership, steps: [] };
  const steps: PublishStep[] = [];
  const defined = ownership.kind === 'own';
  if (want === 'absent') {
    if (defined && lv.active) steps.push({ op: 'destroy' });
    if (defined) steps.push({ op: 'undefine' });
    return { ownership, steps };
  }
  if (!defined) steps.push({ op: 'define', xml: publishedXml(t) });
  if (!defined || !lv.autostart) steps.push({ op: 'autostart' });
  if (want === 'active' && (!defined || !lv.active)) steps.push({ op: 'start' });
  if (want === 'inactive' && defined && lv.active) steps.push({ op: 'destroy' });
  return { ownership, steps };
}

/** One line for the log / `virtnetctl info` when a foreign libvirt network blocks publishing. */
export function foreignMessage(name: string, reason: string): string {
  return `libvirt network ${name} is not virtnet's (${reason}); left alone — run: virtnetctl import-libvirt ${name}`;
}

/**
 * The network hook's stdin for a port of a running domain on the published network, as libvirt
 * gives it at `port-created` / `port-deleted`: the import registers (and revert removes) the ports
 * of domains that were already running through the hooks' own path, so they get their DNS name and
 * a record, as a NIC hot-plugged there would.
 */
export function portHookXml(t: PublishTarget, port: { domain: string; uuid?: string; mac: string }): string {
  return [
    '<hookData>',
    '  <network>',
    `    <name>${escapeText(t.name)}</name>`,
    `    <uuid>${escapeText(t.uuid)}</uuid>`,
    "    <forward mode='bridge'/>",
    `    <bridge name='${escapeAttr(t.bridge)}'/>`,
    '  </network>',
    '  <networkport>',
    '    <owner>',
    `      <name>${escapeText(port.domain)}</name>`,
    ...(port.uuid ? [`      <uuid>${escapeText(port.uuid)}</uuid>`] : []),
    '    </owner>',
    `    <mac address='${escapeAttr(port.mac)}'/>`,
    `    <plug type='network' bridge='${escapeAttr(t.bridge)}'/>`,
    '  </networkport>',
    '</hookData>',
    '',
  ].join('\n');
}
