/**
 * (Each property has a 240 s budget: it takes ~10 s on an idle 2-core machine, several times that
 * when other test suites load the same machine.)
 *
 * Property test: generated and mutated domain XMLs (and network hook data), including hostile strings.
 * Parsing either succeeds — and then every value in the result is safe to use — or raises
 * ValidationError with problems that each name a path and a reason. Nothing else, ever.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import {
  type Domain,
  parseDomainXml,
  parseNetworkHookData,
  VIRTNET_DOMAIN_NS,
} from '../../src/model/domain.js';
import {
  hasControlChars,
  validateHostname,
  validateIfname,
  validateMac,
} from '../../src/model/validators.js';
import { libvirtHooksDir } from '../helpers/shared.js';

const HOSTILE = [
  '',
  ' ',
  '\n',
  'a\nb',
  'x\r\ndhcp-range=1.2.3.4,1.2.3.5',
  '\u0000',
  '\u2028',
  ',',
  '=',
  '#',
  '"',
  "'",
  '<',
  '>',
  '&',
  '&amp;',
  '&#10;',
  '&#0;',
  '&lt;script&gt;',
  ']]>',
  '<![CDATA[x]]>',
  '<!DOCTYPE x>',
  '<!ENTITY a "b">',
  '../../etc/passwd',
  '/',
  '-rf',
  '--help',
  '$(reboot)',
  '`id`',
  ';',
  '|',
  '*',
  '%s%n',
  'a'.repeat(300),
  'vnet0',
  'virbr0',
  'br-0',
  '0123456789abcdef',
  '52:54:00:aa:bb:01',
  '52:54:00:AA:BB:02',
  '01:00:5e:00:00:01',
  '192.168.122.50',
  'fd00::50',
  '::ffff:1.2.3.4',
  '999.1.1.1',
  '65535',
  '65536',
  '0',
  '-1',
  '1e3',
  '0x50',
  'tcp',
  'udp',
  'ipv4',
  'ipv6',
  'network',
  'bridge',
  'ethernet',
  'direct',
  'default',
  'web',
  'toString',
  'constructor',
  '__proto__',
  'hasOwnProperty',
  '🙂',
  'é',
  '\u00a0',
  '720a1d5a-9c10-4ce5-8614-f1cfed9481be',
];

const hostile = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 10 }) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9:.-]{0,20}$/) },
);

/** Escape for an attribute value most of the time; sometimes inject the raw text. */
const attrValue = fc
  .tuple(hostile, fc.nat(9))
  .map(([v, r]) =>
    r === 0
      ? v
      : v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;'),
  );

const maybeAttr = (name: string) =>
  fc.option(attrValue, { nil: undefined }).map((v) => (v === undefined ? '' : ` ${name}='${v}'`));

const ifaceXml = fc
  .record({
    type: fc.oneof(fc.constantFrom('network', 'bridge', 'ethernet', 'direct', 'user'), attrValue),
    mac: maybeAttr('address'),
    source: fc.tuple(maybeAttr('network'), maybeAttr('bridge'), maybeAttr('dev'), maybeAttr('portid')),
    target: maybeAttr('dev'),
    model: maybeAttr('type'),
  })
  .map(
    (r) =>
      `<interface type='${r.type}'>${r.mac ? `<mac${r.mac}/>` : ''}<source${r.source.join('')}/>` +
      `${r.target ? `<target${r.target}/>` : ''}${r.model ? `<model${r.model}/>` : ''}</interface>`,
  );

const forwardXml = fc
  .tuple(
    maybeAttr('proto'),
    maybeAttr('host-port'),
    maybeAttr('guest-port'),
    maybeAttr('host-address'),
    maybeAttr('family'),
  )
  .map((a) => `<v:forward${a.join('')}/>`);

const metaIfaceXml = fc
  .record({
    attrs: fc.tuple(
      maybeAttr('mac'),
      maybeAttr('index'),
      maybeAttr('network'),
      maybeAttr('ip'),
      maybeAttr('ip6'),
      maybeAttr('name'),
    ),
    forwards: fc.array(forwardXml, { maxLength: 3 }),
  })
  .map((r) => `<v:interface${r.attrs.join('')}>${r.forwards.join('')}</v:interface>`);

const domainXml = fc
  .record({
    type: attrValue,
    id: maybeAttr('id'),
    name: fc.option(attrValue, { nil: undefined }),
    uuid: fc.option(attrValue, { nil: undefined }),
    ifaces: fc.array(ifaceXml, { maxLength: 4 }),
    ns: fc.constantFrom(VIRTNET_DOMAIN_NS, 'https://virtnet.org/xmlns/domain/2', 'http://example.com/'),
    meta: fc.option(fc.array(metaIfaceXml, { maxLength: 3 }), { nil: undefined }),
  })
  .map(
    (r) =>
      `<domain type='${r.type}'${r.id}>` +
      (r.name === undefined ? '' : `<name>${r.name}</name>`) +
      (r.uuid === undefined ? '' : `<uuid>${r.uuid}</uuid>`) +
      (r.meta === undefined
        ? ''
        : `<metadata><v:domain xmlns:v="${r.ns}">${r.meta.join('')}</v:domain></metadata>`) +
      `<devices>${r.ifaces.join('')}</devices></domain>`,
  );

const SEED = `<domain type='kvm' id='3'><name>web1</name><uuid>720a1d5a-9c10-4ce5-8614-f1cfed9481be</uuid>
<metadata><virtnet:domain xmlns:virtnet="${VIRTNET_DOMAIN_NS}"><virtnet:interface mac="52:54:00:aa:bb:01"
 ip="192.168.122.50" ip6="fd00::50" name="web"><virtnet:forward proto="tcp" host-port="8080" guest-port="80"/>
</virtnet:interface><virtnet:interface index="1" network="default"/></virtnet:domain></metadata>
<devices><interface type='bridge'><mac address='52:54:00:aa:bb:01'/><source bridge='virbr0'/>
<target dev='vnet0'/><model type='virtio'/></interface><interface type='ethernet'>
<mac address='52:54:00:aa:bb:02'/><target dev='tap1'/></interface></devices></domain>`;

function seeds(pattern: RegExp): string[] {
  const out = [SEED];
  try {
    for (const f of readdirSync(libvirtHooksDir).filter((x) => pattern.test(x)))
      out.push(readFileSync(join(libvirtHooksDir, f), 'utf8'));
  } catch {
    // shared data absent: the hand-written seed still gives mutations (domain.test.ts reports the skip)
  }
  return out;
}

/** Random edits of a seed document: replace, insert or delete a slice, with hostile fragments. */
function mutated(docs: string[]) {
  const edit = fc.record({
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    len: fc.nat(12),
    kind: fc.constantFrom('replace', 'insert', 'delete', 'attr'),
    text: fc.oneof(
      hostile,
      fc.constantFrom('<', '/>', '</interface>', '<interface>', "'", '"', '="x"', ' xmlns:v="x"'),
    ),
  });
  return fc
    .tuple(fc.constantFrom(...docs), fc.array(edit, { minLength: 1, maxLength: 4 }))
    .map(([doc, edits]) => {
      let s = doc;
      for (const e of edits) {
        const i = Math.floor(e.at * s.length);
        if (e.kind === 'insert') s = s.slice(0, i) + e.text + s.slice(i);
        else if (e.kind === 'delete') s = s.slice(0, i) + s.slice(i + e.len);
        else if (e.kind === 'replace') s = s.slice(0, i) + e.text + s.slice(i + e.len);
        else {
          // Replace the value of the attribute that starts after position i, if any.
          const m = /(\w+)=(['"])([^'"]*)\2/g;
          m.lastIndex = i;
          const hit = m.exec(s);
          if (hit)
            s =
              s.slice(0, hit.index) +
              `${hit[1]}=${hit[2]}${e.text}${hit[2]}` +
              s.slice(hit.index + hit[0].length);
        }
      }
      return s;
    });
}

function allStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) allStrings(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) allStrings(x, out);
  return out;
}

let accepted = 0;
let rejected = 0;

function checkDomain(xml: string): void {
  let d: Domain;
  try {
    d = parseDomainXml(xml);
  } catch (e) {
    if (!(e instanceof ValidationError))
      throw new Error(`non-ValidationError ${String(e)} for ${JSON.stringify(xml)}`);
    expect(e.problems.length).toBeGreaterThan(0);
    for (const p of e.problems) {
      expect(p.path).toMatch(/^domain/);
      expect(p.reason.length).toBeGreaterThan(0);
    }
    rejected++;
    return;
  }
  accepted++;
  // Whatever was accepted is safe: no control characters anywhere, well-formed names.
  for (const s of allStrings({ ...d, warnings: [] }))
    expect(hasControlChars(s), JSON.stringify(s)).toBe(false);
  for (const i of d.interfaces) {
    if (i.mac !== undefined) expect(validateMac(i.mac, { unicast: true })).toBeUndefined();
    for (const n of [i.target, i.source.bridge, i.source.dev])
      if (n !== undefined) expect(validateIfname(n)).toBeUndefined();
    if (i.virtnet?.name !== undefined) expect(validateHostname(i.virtnet.name)).toBeUndefined();
    for (const f of i.virtnet?.forwards ?? []) {
      expect(f.hostPort).toBeGreaterThanOrEqual(1);
      expect(f.guestPort).toBeLessThanOrEqual(65535);
      expect(f.families.length).toBeGreaterThan(0);
    }
  }
}

describe('fuzz: parseDomainXml', () => {
  it('generated domain XMLs: success or ValidationError (6,000 runs)', () => {
    fc.assert(fc.property(domainXml, checkDomain), { numRuns: 6000 });
  }, 240_000);

  it('mutated domain XMLs (hand-written seed + captured hook stdin): success or ValidationError (6,000 runs)', () => {
    fc.assert(fc.property(mutated(seeds(/-qemu-.*\.stdin\.xml$/)), checkDomain), { numRuns: 6000 });
  }, 240_000);

  it('both outcomes occurred (the generators are not trivially one-sided)', () => {
    expect(accepted).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });
});

describe('fuzz: parseNetworkHookData', () => {
  it('mutated hook data: success or ValidationError (3,000 runs)', () => {
    const base = `<hookData><network><name>default</name><bridge name='virbr0'/><forward mode='nat'/></network>
<networkport><uuid>b093c970-3df5-4dcc-b9cb-a76e75d848cf</uuid><owner><name>vm</name></owner>
<mac address='52:54:00:aa:bb:01'/><plug type='network' bridge='virbr0'/></networkport></hookData>`;
    fc.assert(
      fc.property(mutated([base, ...seeds(/-network-.*\.stdin\.xml$/)]), (xml) => {
        try {
          const h = parseNetworkHookData(xml);
          for (const s of allStrings(h)) expect(hasControlChars(s)).toBe(false);
        } catch (e) {
          if (!(e instanceof ValidationError))
            throw new Error(`non-ValidationError ${String(e)} for ${JSON.stringify(xml)}`);
        }
      }),
      { numRuns: 3000 },
    );
  }, 240_000);
});
