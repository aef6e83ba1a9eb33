/**
 * fast-check generators of libvirt network XML for the dnsmasq planner's property tests: documents
 * built from valid blocks (NAT/routed/open/isolated, IPv4 and IPv6 with DHCP ranges, hosts, leases,
 * bootp, tftp, DNS forwarders/TXT/SRV/hosts, domain, MTU, dnsmasq:options) where every field is now and
 * then replaced by a hostile value, and libvirt's conformance inputs with one value replaced.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { conformanceDir } from '../../helpers/shared.js';

export const HOSTILE = [
  'a\nb',
  'x\r\ny',
  'port=0',
  'a,b',
  'a=b',
  'a#b',
  '#',
  'a"b',
  "a'b",
  'a\\b',
  'a b',
  ' lead',
  'x\u2028y',
  'x\u0085y',
  'x\ty',
  'a/b',
  '',
  'é.test',
  'a\u0000b',
  'x\ndhcp-range=1.2.3.4,1.2.3.5',
  'ok.test\nserver=6.6.6.6',
];

/** A field: mostly a valid value, now and then a hostile one. */
function field(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 80, arbitrary: valid },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  );
}

const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,6}[a-z0-9]$/);
const dnsName = field(fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join('.')));
const octet = fc.integer({ min: 0, max: 255 });
const mac = field(
  fc
    .array(fc.integer({ min: 0, max: 255 }), { minLength: 5, maxLength: 5 })
    .map((b) => ['52', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':')),
);
const lease = fc.option(
  fc.record({
    expiry: field(fc.integer({ min: 0, max: 100000 }).map(String)),
    unit: fc.option(field(fc.constantFrom('seconds', 'minutes', 'hours')), { nil: undefined }),
  }),
  { nil: undefined },
);

/** Escape for an XML attribute value; a newline becomes `&#10;` (which the parser decodes back). */
export function attr(v: string): string {
  return v
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll("'", '&apos;')
    .replaceAll('"', '&quot;')
    .replaceAll('\n', '&#10;')
    .replaceAll('\r', '&#13;')
    .replaceAll('\t', '&#9;');
}
function text(v: string): string {
  return v.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
function opt(name: string, v: string | undefined): string {
  return v === undefined ? '' : ` ${name}='${attr(v)}'`;
}
function leaseXml(l: { expiry: string; unit: string | undefined } | undefined): string {
  return l ? `<lease${opt('expiry', l.expiry)}${opt('unit', l.unit)}/>` : '';
}

const v4Block = fc
  .record({
    a: fc.integer({ min: 1, max: 223 }),
    b: octet,
    c: octet,
    rangeFrom: fc.integer({ min: 2, max: 120 }),
    rangeLen: fc.integer({ min: 0, max: 120 }),
    withRange: fc.boolean(),
    rangeLease: lease,
    hosts: fc.array(
      fc.record({
        mac: fc.option(mac, { nil: undefined }),
        name: fc.option(dnsName, { nil: undefined }),
        last: fc.integer({ min: 130, max: 250 }),
        lease,
      }),
      { maxLength: 3 },
    ),
    bootp: fc.option(
      fc.record({
        file: field(fc.constantFrom('pxe.0', 'undionly.kpxe', 'boot/x.efi')),
        server: fc.option(field(fc.constant('10.0.0.9')), { nil: undefined }),
      }),
      { nil: undefined },
    ),
    tftp: fc.option(field(fc.constantFrom('/srv/tftp', '/var/lib/tftp')), { nil: undefined }),
    localPtr: fc.option(fc.constantFrom('yes', 'no'), { nil: undefined }),
    dhcp: fc.boolean(),
  })
  .map((r) => {
    const net = `${r.a}.${r.b}.${r.c}`;
    const hostLines = r.hosts
      .map(
        (h, i) =>
          `<host${opt('mac', h.mac)}${opt('name', h.name)} ip='${net}.${130 + i * 40 + (h.last % 40)}'>${leaseXml(h.lease)}</host>`,
      )
      .join('');
    const range = r.withRange
      ? `<range start='${net}.${r.rangeFrom}' end='${net}.${Math.min(254, r.rangeFrom + r.rangeLen)}'>${leaseXml(r.rangeLease)}</range>`
      : '';
    const bootp = r.bootp ? `<bootp${opt('file', r.bootp.file)}${opt('server', r.bootp.server)}/>` : '';
    const dhcp = r.dhcp ? `<dhcp>${range}${hostLines}${bootp}</dhcp>` : '';
    const tftp = r.tftp !== undefined ? `<tftp${opt('root', r.tftp)}/>` : '';
    return `<ip address='${net}.1' netmask='255.255.255.0'${opt('localPtr', r.localPtr)}>${tftp}${dhcp}</ip>`;
  });

const v6Block = fc
  .record({
    g: fc.integer({ min: 0, max: 0xffff }),
    prefix: fc.constantFrom('64', '64', '56', '62'),
    dhcp: fc.boolean(),
    from: fc.integer({ min: 0x100, max: 0x1ff }),
    len: fc.integer({ min: 0, max: 0xff }),
    withRange: fc.boolean(),
    hosts: fc.array(
      fc.record({
        id: fc.option(field(fc.constantFrom('0:1:0:1:2:3:4:', '0:4:aa:bb:')), { nil: undefined }),
        name: fc.option(dnsName, { nil: undefined }),
        last: fc.integer({ min: 0x300, max: 0x3ff }),
        lease,
      }),
      { maxLength: 3 },
    ),
    localPtr: fc.option(fc.constantFrom('yes', 'no'), { nil: undefined }),
  })
  .map((r) => {
    const base = `fd00:${r.g.toString(16)}::`;
    const hosts = r.hosts
      .map(
        (h, i) =>
          `<host${opt('id', h.id === undefined ? undefined : `${h.id}${i}`)}${opt('name', h.name)} ip='${base}${(h.last + i).toString(16)}'>${leaseXml(h.lease)}</host>`,
      )
      .join('');
    const range = r.withRange
      ? `<range start='${base}${r.from.toString(16)}' end='${base}${(r.from + r.len).toString(16)}'/>`
      : '';
    const dhcp = r.dhcp ? `<dhcp>${range}${hosts}</dhcp>` : '';
    return `<ip family='ipv6' address='${base}1' prefix='${r.prefix}'${opt('localPtr', r.localPtr)}>${dhcp}</ip>`;
  });

const dnsBlock = fc.record({
  enable: fc.option(fc.constantFrom('yes', 'no'), { nil: undefined }),
  fpn: fc.option(fc.constantFrom('yes', 'no'), { nil: undefined }),
  forwarders: fc.array(
    fc.oneof(
      fc.record({
        addr: field(fc.constantFrom('8.8.8.8', '2001:db8::53', '192.0.2.1')),
        domain: fc.option(dnsName, { nil: undefined }),
      }),
      fc.record({ addr: fc.constant(undefined), domain: dnsName }),
    ),
    { maxLength: 3 },
  ),
  txts: fc.array(fc.record({ name: field(label), value: field(fc.constantFrom('v', 'some value', 'k:v')) }), {
    maxLength: 2,
  }),
  srvs: fc.array(
    fc
      .record({
        service: field(label),
        protocol: field(fc.constantFrom('tcp', 'udp')),
        domain: fc.option(dnsName, { nil: undefined }),
        target: fc.option(dnsName, { nil: undefined }),
        port: fc.option(field(fc.integer({ min: 0, max: 65535 }).map(String)), { nil: undefined }),
        priority: fc.option(field(fc.integer({ min: 0, max: 65535 }).map(String)), { nil: undefined }),
        weight: fc.option(field(fc.integer({ min: 0, max: 65535 }).map(String)), { nil: undefined }),
      })
      // port, priority and weight only make sense with a target (the parser refuses them otherwise).
      .map((r) =>
        r.target === undefined ? { ...r, port: undefined, priority: undefined, weight: undefined } : r,
      ),
    { maxLength: 2 },
  ),
  hosts: fc.array(
    fc.record({
      ip: field(fc.constantFrom('10.0.0.5', '192.0.2.7', 'fd00::7', '10.0.0.5')),
      names: fc.array(dnsName, { minLength: 1, maxLength: 3 }),
    }),
    { maxLength: 3 },
  ),
});

function dropDhcp(ipXml: string): string {
  return ipXml.replace(/<dhcp>.*<\/dhcp>/, '');
}

export const networkXml = fc
  .record({
    name: field(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,11}$/)),
    bridge: field(fc.stringMatching(/^[a-z][a-z0-9]{0,9}$/)),
    mode: fc.option(field(fc.constantFrom('nat', 'route', 'open')), { nil: undefined }),
    domain: fc.option(
      fc.record({ name: dnsName, localOnly: fc.option(fc.constantFrom('yes', 'no'), { nil: undefined }) }),
      {
        nil: undefined,
      },
    ),
    dns: fc.option(dnsBlock, { nil: undefined }),
    mtu: fc.option(field(fc.integer({ min: 1280, max: 9000 }).map(String)), { nil: undefined }),
    v4: fc.array(v4Block, { minLength: 1, maxLength: 2 }),
    v6: fc.array(v6Block, { maxLength: 2 }),
    twoDhcp: fc.integer({ min: 0, max: 19 }).map((n) => n === 0), // sometimes two DHCP <ip> of a family
    options: fc.array(
      field(fc.constantFrom('log-queries', 'cname=a.test,b.test', 'address=/x.test/10.0.0.1')),
      {
        maxLength: 2,
      },
    ),
  })
  .map((r) => {
    const dns = r.dns;
    const dnsXml = dns
      ? `<dns${opt('enable', dns.enable)}${opt('forwardPlainNames', dns.fpn)}>` +
        dns.forwarders.map((f) => `<forwarder${opt('addr', f.addr)}${opt('domain', f.domain)}/>`).join('') +
        dns.txts.map((t) => `<txt${opt('name', t.name)}${opt('value', t.value)}/>`).join('') +
        dns.srvs
          .map(
            (s) =>
              `<srv${opt('service', s.service)}${opt('protocol', s.protocol)}${opt('domain', s.domain)}${opt('target', s.target)}${opt('port', s.port)}${opt('priority', s.priority)}${opt('weight', s.weight)}/>`,
          )
          .join('') +
        dns.hosts
          .map(
            (h) =>
              `<host${opt('ip', h.ip)}>${h.names.map((n) => `<hostname>${text(n)}</hostname>`).join('')}</host>`,
          )
          .join('') +
        '</dns>'
      : '';
    return (
      `<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>${text(r.name)}</name>` +
      (r.mode ? `<forward${opt('mode', r.mode)}/>` : '') +
      `<bridge${opt('name', r.bridge)}/>` +
      (r.mtu ? `<mtu${opt('size', r.mtu)}/>` : '') +
      (r.domain ? `<domain${opt('name', r.domain.name)}${opt('localOnly', r.domain.localOnly)}/>` : '') +
      dnsXml +
      [...r.v4, ...r.v6]
        .map((b, i) => (i > 0 && i !== r.v4.length && !r.twoDhcp ? dropDhcp(b) : b))
        .join('') +
      (r.options.length
        ? `<dnsmasq:options>${r.options.map((o) => `<dnsmasq:option${opt('value', o)}/>`).join('')}</dnsmasq:options>`
        : '') +
      '</network>'
    );
  });

/** Conformance inputs with one attribute value or text replaced by a hostile value. */
export function mutatedSeeds(): fc.Arbitrary<string> {
  const cases = JSON.parse(readFileSync(resolve(conformanceDir, 'cases.json'), 'utf8')).networkxml2conf as {
    xml: string;
  }[];
  const seeds = cases.map((c) => readFileSync(resolve(conformanceDir, c.xml), 'utf8'));
  return fc
    .record({
      seed: fc.constantFrom(...seeds),
      pick: fc.nat(),
      value: fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ maxLength: 10 })),
    })
    .map(({ seed, pick, value }) => {
      const spots = [...seed.matchAll(/(=')([^']*)(')|(=")([^"]*)(")|(>)([^<>]+)(<\/)/g)];
      if (spots.length === 0) return seed;
      const m = spots[pick % spots.length]!;
      const start = m.index! + (m[1] ?? m[4] ?? m[7])!.length;
      const len = (m[2] ?? m[5] ?? m[8])!.length;
      return seed.slice(0, start) + attr(value) + seed.slice(start + len);
    });
}
