/**
 * A small, strict layer over fast-xml-parser 5: turns an XML document into a plain element tree
 * (`XmlElement`), resolves namespace prefixes, and escapes values for output the way libvirt does.
 *
 * Refused up front (ValidationError at path `xml`): input larger than 1 MiB, anything that is not
 * well-formed XML, a DOCTYPE (and with it every entity declaration), CDATA sections, and any entity
 * reference other than the five predefined ones and numeric character references. Comments and
 * processing instructions are dropped.
 */

import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ValidationError } from '../errors.js';

export const MAX_XML_BYTES = 1024 * 1024;

export interface XmlElement {
  /** Qualified name as written, e.g. `ip` or `dnsmasq:options`. */
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  /** Namespace URI of the element (from its prefix or the default namespace), '' when none. */
  ns: string;
  /** Local name (after the prefix). */
  local: string;
}

export interface XmlText {
  text: string;
}

export type XmlNode = XmlElement | XmlText;

export function isElement(n: XmlNode): n is XmlElement {
  return (n as XmlElement).name !== undefined;
}

const ENTITY_RE = /&(?!(?:lt|gt|amp|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});)/;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: '#comment',
  allowBooleanAttributes: false,
});

type Raw = Record<string, unknown>;

/** XML 1.0 Char production. */
function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

function bad(reason: string, value?: string): ValidationError {
  return ValidationError.one('xml', value, reason);
}

function convert(raw: Raw, scope: Record<string, string>): XmlElement | undefined {
  const keys = Object.keys(raw).filter((k) => k !== ':@');
  const name = keys[0];
  if (name === undefined || name === '#text' || name === '#comment') return undefined;
  const attrsRaw = (raw[':@'] ?? {}) as Record<string, unknown>;
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrsRaw)) attrs[k] = String(v);
  const nsScope = { ...scope };
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'xmlns') nsScope[''] = v;
    else if (k.startsWith('xmlns:')) nsScope[k.slice(6)] = v;
  }
  const colon = name.indexOf(':');
  const prefix = colon >= 0 ? name.slice(0, colon) : '';
  const local = colon >= 0 ? name.slice(colon + 1) : name;
  const ns = nsScope[prefix];
  if (prefix !== '' && ns === undefined) throw bad(`undeclared namespace prefix '${prefix}'`, name);
  const children: XmlNode[] = [];
  for (const c of (raw[name] ?? []) as Raw[]) {
    if ('#text' in c) children.push({ text: String(c['#text']) });
    else if ('#comment' in c) continue;
    else {
      const el = convert(c, nsScope);
      if (el) children.push(el);
    }
  }
  return { name, attrs, children, ns: ns ?? '', local };
}

/** Parse a whole document into its root element. Throws only ValidationError. */
export function parseXmlDocument(xml: unknown): XmlElement {
  if (typeof xml !== 'string') throw bad('XML input must be a string');
  if (Buffer.byteLength(xml, 'utf8') > MAX_XML_BYTES) {
    throw bad(`XML input is larger than ${MAX_XML_BYTES} bytes`);
  }
  if (/<!DOCTYPE/i.test(xml)) throw bad('DOCTYPE declarations (and entity definitions) are not allowed');
  if (/<!\[CDATA\[/.test(xml)) throw bad('CDATA sections are not allowed');
  if (/<!ENTITY/i.test(xml)) throw bad('entity declarations are not allowed');
  if (ENTITY_RE.test(xml)) {
    throw bad("only the predefined entities and numeric character references may follow '&'");
  }
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(xml)) {
    throw bad('characters not allowed in XML 1.0 (control characters other than tab, newline, CR)');
  }
  for (const m of xml.matchAll(/&#(x[0-9a-fA-F]{1,6}|[0-9]{1,7});/g)) {
    const ref = m[1]!;
    const cp = ref.startsWith('x') ? Number.parseInt(ref.slice(1), 16) : Number(ref);
    if (!isXmlChar(cp)) throw bad(`character reference ${m[0]} is not an allowed XML 1.0 character`);
  }
  let roots: Raw[];
  try {
    const v = XMLValidator.validate(xml);
    if (v !== true)
      throw bad(`not well-formed XML: ${v.err.msg} (line ${v.err.line ?? '?'}, column ${v.err.col ?? '?'})`);
    roots = parser.parse(xml) as Raw[];
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    throw bad(`not well-formed XML: ${e instanceof Error ? e.message : String(e)}`);
  }
  const elements: XmlElement[] = [];
  for (const r of roots) {
    if ('#text' in r) {
      if (String(r['#text']).trim() !== '') throw bad('text outside the root element');
      continue;
    }
    const el = convert(r, { xml: 'http://www.w3.org/XML/1998/namespace' });
    if (el) elements.push(el);
  }
  if (elements.length !== 1) throw bad(`expected exactly one root element, found ${elements.length}`);
  return elements[0]!;
}

/** Child elements only. */
export function childElements(el: XmlElement): XmlElement[] {
  return el.children.filter(isElement);
}

/** Concatenated text of the direct text children. */
export function textContent(el: XmlElement): string {
  let s = '';
  for (const c of el.children) {
    if (isElement(c)) s += textContent(c);
    else s += c.text;
  }
  return s;
}

/** Escape for a single-quoted attribute value, as libvirt's virBufferEscapeString does. */
export function escapeAttr(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll("'", '&apos;')
    .replaceAll('"', '&quot;');
}

/** Escape element text (libvirt escapes quotes in text too). */
export function escapeText(value: string): string {
  return escapeAttr(value);
}

/** Escape for a double-quoted attribute value the way libxml2 serializes (metadata). */
function escapeAttrDq(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll('\n', '&#10;')
    .replaceAll('\r', '&#13;')
    .replaceAll('\t', '&#9;');
}

function escapeTextXml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('\r', '&#13;');
}

/**
 * Serialize an element the way libxml2 does with formatting on (used for `<metadata>` contents):
 * double-quoted attributes, elements whose children are all elements are indented by 2 per level,
 * elements with text keep their content inline. Returns lines without the base indentation.
 */
export function serializeElement(el: XmlElement): string[] {
  const attrs = Object.entries(el.attrs)
    .map(([k, v]) => ` ${k}="${escapeAttrDq(v)}"`)
    .join('');
  const kids = el.children.filter((c) => isElement(c) || c.text.trim() !== '');
  if (kids.length === 0) return [`<${el.name}${attrs}/>`];
  const onlyElements = kids.every(isElement);
  if (!onlyElements) {
    return [`<${el.name}${attrs}>${el.children.map(inline).join('')}</${el.name}>`];
  }
  const lines = [`<${el.name}${attrs}>`];
  for (const k of kids as XmlElement[]) for (const l of serializeElement(k)) lines.push(`  ${l}`);
  lines.push(`</${el.name}>`);
  return lines;
}

function inline(n: XmlNode): string {
  if (!isElement(n)) return escapeTextXml(n.text);
  const attrs = Object.entries(n.attrs)
    .map(([k, v]) => ` ${k}="${escapeAttrDq(v)}"`)
    .join('');
  if (n.children.length === 0) return `<${n.name}${attrs}/>`;
  return `<${n.name}${attrs}>${n.children.map(inline).join('')}</${n.name}>`;
}
