/**
 * Property: no input value ever creates a line or an option of its own in what the dnsmasq planner
 * writes. fast-check generates network XML documents (valid building blocks, each field replaced now
 * and then by a hostile value: newline as a raw character or as `&#10;`, ',', '=', '#', quotes,
 * backslash, spaces, Unicode line separators…) and, separately, mutates the libvirt conformance inputs.
 * For every document:
 * - parsing succeeds or throws ValidationError (nothing else);
 * - rendering succeeds or throws ValidationError (libvirt's start-time refusals);
 * - every conf line has one of the shapes the planner produces, with no stray ',', '=', '#' inside a
 *   value, and the number of lines of each kind is what the Network implies (so an input value can
 *   neither add a line nor hide one); `dnsmasq:options` values are the last lines, one each;
 * - hostsfile: one well-formed line per DHCP host with an address of the served IPv4/IPv6 definition;
 * - addn-hosts: one `ip<TAB>name<TAB>…` line per address, as many names as the XML gave.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import type { Network } from '../../src/model/network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { renderAddnhosts, renderDnsmasqConf, renderHostsfile } from '../../src/plan/dnsmasq.js';
import { conformanceDir, missingShared } from '../helpers/shared.js';

// ---------------------------------------------------------------------------------------------------
// Generators

const HOSTILE = [
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
function attr(v: string): string {
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

const networkXml = fc
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
function mutatedSeeds(): fc.Arbitrary<string> {
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

// ---------------------------------------------------------------------------------------------------
// Checks

const A4 = String.raw`\d{1,3}(?:\.\d{1,3}){3}`;
const A6 = '[0-9a-f:]*:[0-9a-f:.]*';
const ADDR = `(?:${A4}|${A6})`;
/** A value inside an option: nothing that splits it (',' '='), starts a comment ('#'), ends it (space)
 * or is unquoted by dnsmasq ('"' '\\'). */
const NAME = '[^,=#\\s"\\\\]+';
const LEASE = String.raw`(?:\d+[smh]|infinite)`;
const PATH = String.raw`/[^\s,#"\\=]+`;

/** Each kind of line the planner writes; a value part never contains ',', '=', '#' or whitespace. */
const KINDS: Record<string, RegExp> = {
  strictOrder: /^strict-order$/,
  port0: /^port=0$/,
  server: new RegExp(`^server=(?:/${NAME}/)?(?:${ADDR}(?:#\\d+)?|#)$`),
  noResolv: /^no-resolv$/,
  localDomain: new RegExp(`^local=/${NAME}/$`),
  domain: new RegExp(`^domain=${NAME}$`),
  expandHosts: /^expand-hosts$/,
  domainNeeded: /^domain-needed$/,
  localEmpty: /^local=\/\/$/,
  exceptLo: /^except-interface=lo$/,
  bindDynamic: /^bind-dynamic$/,
  iface: new RegExp(`^interface=${NAME}$`),
  noRoute: /^dhcp-option=3$/,
  raParam: /^ra-param=\*,0,0$/,
  txt: /^txt-record=[^,=#\s]+,[^,=#\n]*$/,
  srv: new RegExp(`^srv-host=_${NAME}\\._${NAME}(?:,${NAME}(?:,\\d+(?:,\\d+(?:,\\d+)?)?)?)?$`),
  enableTftp: /^enable-tftp$/,
  tftpRoot: new RegExp(`^tftp-root=${PATH}$`),
  range: new RegExp(`^dhcp-range=${ADDR},${ADDR},(?:${A4}|\\d+)(?:,${LEASE})?$`),
  staticRange: new RegExp(`^dhcp-range=${ADDR},static(?:,\\d+)?$`),
  noOverride: /^dhcp-no-override$/,
  authoritative: /^dhcp-authoritative$/,
  boot: new RegExp(`^dhcp-boot=[^,=#\\s]+(?:,,${A4})?$`),
  leaseMax: /^dhcp-lease-max=\d+$/,
  hostsfile: new RegExp(`^dhcp-hostsfile=${PATH}$`),
  addnhosts: new RegExp(`^addn-hosts=${PATH}$`),
  mtu: /^dhcp-option=option:mtu,\d+$/,
  enableRa: /^enable-ra$/,
  raOnly: new RegExp(`^dhcp-range=${ADDR},ra-only$`),
};

function kindOf(line: string): string | undefined {
  for (const [k, re] of Object.entries(KINDS)) if (re.test(line)) return k;
  return undefined;
}

/** How many lines of each kind the network implies (independent of the renderer's code path). */
function expectedKinds(net: Network): Record<string, number> {
  const wantDNS = net.dns?.enable !== false;
  const dns = net.dns;
  const dhcpIps = net.ips.filter((ip) => (ip.dhcp?.ranges.length ?? 0) + (ip.dhcp?.hosts.length ?? 0) > 0);
  const v4 = dhcpIps.find((ip) => ip.family === 'ipv4');
  const v6 = dhcpIps.find((ip) => ip.family === 'ipv6');
  const served = [v4, v6].filter((x) => x !== undefined);
  const fwds = wantDNS ? (dns?.forwarders ?? []) : [];
  const e: Record<string, number> = {
    strictOrder: 1,
    port0: wantDNS ? 0 : 1,
    server: fwds.length,
    noResolv:
      (fwds.some((f) => f.addr !== undefined && f.domain === undefined) ? 1 : 0) +
      (net.forward.mode === 'none' ? 1 : 0),
    localDomain:
      (net.domain?.localOnly === true ? 1 : 0) +
      (wantDNS ? net.ips.filter((ip) => ip.localPtr === true).length : 0),
    domain: net.domain ? 1 : 0,
    expandHosts: net.domain ? 1 : 0,
    domainNeeded: wantDNS && dns?.forwardPlainNames === false ? 1 : 0,
    localEmpty: wantDNS && dns?.forwardPlainNames === false ? 1 : 0,
    exceptLo: 1,
    bindDynamic: 1,
    iface: 1,
    noRoute: net.forward.mode === 'none' ? 1 : 0,
    raParam: net.forward.mode === 'none' ? 1 : 0,
    txt: wantDNS ? (dns?.txts.length ?? 0) : 0,
    srv: wantDNS ? (dns?.srvs.length ?? 0) : 0,
    enableTftp: net.ips.some((ip) => ip.family === 'ipv4' && ip.tftpRoot !== undefined) ? 1 : 0,
    tftpRoot: net.ips.filter((ip) => ip.family === 'ipv4' && ip.tftpRoot !== undefined).length,
    range: served.reduce((n, ip) => n + ip.dhcp!.ranges.length, 0),
    staticRange: served.filter((ip) => ip.dhcp!.ranges.length === 0).length,
    noOverride: v4 ? 1 : 0,
    authoritative: v4 ? 1 : 0,
    boot: v4?.dhcp?.bootp ? 1 : 0,
    leaseMax: served.some((ip) => ip.dhcp!.ranges.length > 0) ? 1 : 0,
    hostsfile: served.length > 0 ? 1 : 0,
    addnhosts: wantDNS ? 1 : 0,
    mtu: net.mtu ? 1 : 0,
    enableRa: v6 ? 1 : 0,
    raOnly: v6 ? 0 : net.ips.filter((ip) => ip.family === 'ipv6').length,
  };
  return e;
}

const HOST4 = new RegExp(
  `^(?:[0-9a-f]{2}(?::[0-9a-f]{2}){5},${A4}(?:,${NAME})?|${NAME},${A4})(?:,${LEASE})?$`,
);
const HOST6 = new RegExp(`^(?:id:[0-9a-fA-F:]+(?:,${NAME})?|${NAME}),\\[${A6}\\](?:,${LEASE})?$`);
const ADDN = new RegExp(`^${ADDR}\\t(?:${NAME}\\t)+$`);

const paths = { hostsfile: '/run/virtnet/n.hostsfile', addnhosts: '/run/virtnet/n.addnhosts' };
const stats = { parsed: 0, rendered: 0, total: 0 };

function check(xml: string): void {
  stats.total++;
  let net: Network;
  try {
    net = parseNetworkXml(xml).network;
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return;
  }
  stats.parsed++;
  let conf: string;
  let hosts: string;
  let addn: string;
  try {
    conf = renderDnsmasqConf(net, paths, { header: '' });
    hosts = renderHostsfile(net);
    addn = renderAddnhosts(net);
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return;
  }
  stats.rendered++;

  // conf: the dnsmasq:options values are the last lines, one each; every other line is a known kind,
  // and the count of each kind is what the network implies.
  expect(conf.endsWith('\n')).toBe(true);
  const lines = conf.slice(0, -1).split('\n');
  const nOpts = net.dnsmasqOptions.length;
  const planned = lines.slice(0, lines.length - nOpts);
  expect(lines.slice(lines.length - nOpts)).toEqual(net.dnsmasqOptions);
  for (const o of net.dnsmasqOptions) expect(o).not.toMatch(/[\n\r\u0000]/);
  const counts: Record<string, number> = {};
  for (const line of planned) {
    const k = kindOf(line);
    if (k === undefined)
      throw new Error(`unexpected conf line ${JSON.stringify(line)} in\n${conf}\nfrom\n${xml}`);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  const want = Object.fromEntries(Object.entries(expectedKinds(net)).filter(([, n]) => n > 0));
  expect(counts, xml).toEqual(want);

  // hostsfile: one line per DHCP host with an address in the served definitions.
  const served = ['ipv4', 'ipv6'].map((f) =>
    net.ips.find((ip) => ip.family === f && (ip.dhcp?.ranges.length ?? 0) + (ip.dhcp?.hosts.length ?? 0) > 0),
  );
  const hostLines = hosts === '' ? [] : hosts.slice(0, -1).split('\n');
  const nHosts = served.reduce(
    (n, ip) => n + (ip?.dhcp?.hosts.filter((h) => h.ip !== undefined).length ?? 0),
    0,
  );
  expect(hostLines.length, xml).toBe(nHosts);
  for (const l of hostLines)
    expect(HOST4.test(l) || HOST6.test(l), `${JSON.stringify(l)} from ${xml}`).toBe(true);

  // addn-hosts: one line per distinct address with names, all names present.
  const addnLines = addn === '' ? [] : addn.slice(0, -1).split('\n');
  const dnsHosts = (net.dns?.hosts ?? []).filter((h) => h.hostnames.length > 0);
  const names = dnsHosts.reduce((n, h) => n + h.hostnames.length, 0);
  for (const l of addnLines) expect(ADDN.test(l), `${JSON.stringify(l)} from ${xml}`).toBe(true);
  expect(addnLines.reduce((n, l) => n + l.split('\t').length - 2, 0)).toBe(names);
  expect(addnLines.length).toBeLessThanOrEqual(dnsHosts.length);
}

const noShared = missingShared(resolve(conformanceDir, 'cases.json'));

describe('dnsmasq planner: no line or option from an input value', () => {
  it('generated network XML (8,000 runs)', () => {
    const before = { ...stats };
    fc.assert(fc.property(networkXml, check), { numRuns: 8000 });
    const parsed = stats.parsed - before.parsed;
    const rendered = stats.rendered - before.rendered;
    console.log(
      `dnsmasq injection (generated): ${stats.total - before.total} documents, ${parsed} parsed, ${rendered} rendered`,
    );
    // The property must not be vacuous: a good share of the documents reaches the renderer.
    expect(rendered).toBeGreaterThan(2500);
  }, 300_000); // the parser dominates (~1-3 ms a document on a busy machine)

  it.skipIf(noShared !== undefined)(
    'mutated libvirt conformance inputs (3,000 runs)',
    () => {
      const before = { ...stats };
      fc.assert(fc.property(mutatedSeeds(), check), { numRuns: 3000 });
      const rendered = stats.rendered - before.rendered;
      console.log(
        `dnsmasq injection (mutated): ${stats.total - before.total} documents, ${stats.parsed - before.parsed} parsed, ${rendered} rendered`,
      );
      expect(rendered).toBeGreaterThan(60); // ~170 expected: most hostile values are (rightly) refused
    },
    300_000,
  );
});
