/**
 * fast-check arbitraries for libvirt network XML, for property tests of the parser and of everything
 * downstream of it (planners: "no output line comes from an input value").
 *
 * - `networkSpec()`      a valid network as an element tree (`XmlSpec`); `specToXml` serializes it.
 * - `validNetworkXml()`  the same, as XML text: always parses (parseNetworkXml succeeds).
 * - `hostileString()`    values meant to break things: newlines, NUL, control characters, ',', '=',
 *                        '#', quotes, shell metacharacters, '../', huge strings, wrong types.
 * - `mutatedNetworkXml()` a valid network with one to three mutations: an attribute value or text
 *                        replaced by a hostile string, an element dropped or duplicated, an unknown
 *                        element/attribute added, or raw characters spliced into the XML text.
 * - `anyNetworkXml()`    valid or mutated (what a fuzz test wants).
 * - `HOSTILE_MARKERS`    substrings that only appear in hostile values (for "no output contains an
 *                        injected line" checks).
 */
import fc from 'fast-check';

export interface XmlSpec {
  name: string;
  attrs: [string, string][];
  children: XmlSpec[];
  text?: string;
}

const el = (
  name: string,
  attrs: Record<string, string | undefined> = {},
  children: XmlSpec[] = [],
  text?: string,
): XmlSpec => {
  const a: [string, string][] = [];
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) a.push([k, v]);
  const s: XmlSpec = { name, attrs: a, children };
  if (text !== undefined) s.text = text;
  return s;
};

function esc(v: string): string {
  return v
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll("'", '&apos;')
    .replaceAll('"', '&quot;')
    .replaceAll('\n', '&#10;')
    .replaceAll('\r', '&#13;')
    .replaceAll('\t', '&#9;');
}

/** Serialize a spec; characters XML cannot carry (e.g. NUL) are written raw, so the XML is then invalid. */
export function specToXml(s: XmlSpec, indent = ''): string {
  const attrs = s.attrs.map(([k, v]) => ` ${k}='${esc(v)}'`).join('');
  if (s.children.length === 0 && s.text === undefined) return `${indent}<${s.name}${attrs}/>`;
  if (s.children.length === 0) return `${indent}<${s.name}${attrs}>${esc(s.text ?? '')}</${s.name}>`;
  const inner = s.children.map((c) => specToXml(c, `${indent}  `)).join('\n');
  return `${indent}<${s.name}${attrs}>\n${inner}\n${indent}</${s.name}>`;
}

const hex2 = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const mac = fc.tuple(hex2, hex2, hex2).map(([a, b, c]) => `52:54:00:${a}:${b}:${c}`);
const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/);
const hostname = fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join('.'));
const yesNo = fc.constantFrom('yes', 'no');

function maybe<T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(a, { nil: undefined });
}

/** An IPv4 <ip> in 10.A.B.0/24 with DHCP ranges and hosts (unique addresses and MACs). */
function ipv4(a: number, b: number, withDhcp: boolean): fc.Arbitrary<XmlSpec> {
  const net = `10.${a}.${b}`;
  return fc
    .record({
      useNetmask: fc.boolean(),
      lease: maybe(
        fc.record({ expiry: fc.integer({ min: 2, max: 1000 }), unit: fc.constantFrom('minutes', 'hours') }),
      ),
      hosts: fc.uniqueArray(fc.integer({ min: 150, max: 250 }), { maxLength: 4 }),
      macs: fc.uniqueArray(mac, { minLength: 4, maxLength: 4, selector: (m) => m }),
      names: fc.uniqueArray(label, { minLength: 4, maxLength: 4, selector: (n) => n }),
      localPtr: maybe(yesNo),
      tftp: maybe(fc.constantFrom('/srv/tftp', '/var/lib/tftpboot')),
      bootp: maybe(fc.constantFrom('pxelinux.0', 'boot.ipxe')),
    })
    .map((r) => {
      const dhcpKids: XmlSpec[] = [];
      if (withDhcp) {
        const lease = r.lease ? [el('lease', { expiry: String(r.lease.expiry), unit: r.lease.unit })] : [];
        dhcpKids.push(el('range', { start: `${net}.2`, end: `${net}.100` }, lease));
        r.hosts.forEach((h, i) => {
          dhcpKids.push(el('host', { mac: r.macs[i], name: r.names[i], ip: `${net}.${h}` }));
        });
        if (r.bootp) dhcpKids.push(el('bootp', { file: r.bootp }));
      }
      const kids: XmlSpec[] = [];
      if (r.tftp) kids.push(el('tftp', { root: r.tftp }));
      if (dhcpKids.length) kids.push(el('dhcp', {}, dhcpKids));
      return el(
        'ip',
        {
          address: `${net}.1`,
          netmask: r.useNetmask ? '255.255.255.0' : undefined,
          prefix: r.useNetmask ? undefined : '24',
          localPtr: r.localPtr,
        },
        kids,
      );
    });
}

function ipv6(a: number, withDhcp: boolean): fc.Arbitrary<XmlSpec> {
  const p = `fd00:${a.toString(16)}::`;
  return fc.uniqueArray(fc.integer({ min: 0x200, max: 0x2ff }), { maxLength: 3 }).map((hosts) => {
    const dhcp: XmlSpec[] = [];
    if (withDhcp) {
      dhcp.push(el('range', { start: `${p}100`, end: `${p}1ff` }));
      hosts.forEach((h, i) => {
        dhcp.push(el('host', { id: `0:3:0:1:0:16:3e:11:22:${i}`, ip: `${p}${h.toString(16)}` }));
      });
    }
    return el(
      'ip',
      { family: 'ipv6', address: `${p}1`, prefix: '64' },
      dhcp.length ? [el('dhcp', {}, dhcp)] : [],
    );
  });
}

const dnsSpec: fc.Arbitrary<XmlSpec | undefined> = maybe(
  fc
    .record({
      enable: maybe(fc.constant('yes')),
      fpn: maybe(yesNo),
      forwarders: fc.array(
        fc.oneof(fc.constantFrom('8.8.8.8', '1.1.1.1', '2001:4860:4860::8888'), hostname),
        { maxLength: 2 },
      ),
      hosts: fc.array(
        fc.tuple(fc.integer({ min: 2, max: 250 }), fc.array(hostname, { minLength: 1, maxLength: 2 })),
        {
          maxLength: 2,
        },
      ),
      txts: fc.array(fc.tuple(label, fc.stringMatching(/^[a-z0-9 ]{0,20}$/)), { maxLength: 2 }),
      srvs: fc.array(
        fc.record({
          service: label,
          protocol: fc.constantFrom('tcp', 'udp'),
          target: maybe(hostname),
          port: fc.integer({ min: 1, max: 65535 }),
        }),
        { maxLength: 2 },
      ),
    })
    .map((d) => {
      const kids: XmlSpec[] = [];
      for (const f of d.forwarders)
        kids.push(
          f.includes('.') && !/[a-z]/.test(f)
            ? el('forwarder', { addr: f })
            : f.includes(':')
              ? el('forwarder', { addr: f })
              : el('forwarder', { domain: f }),
        );
      d.hosts.forEach(([h, names]) => {
        kids.push(
          el(
            'host',
            { ip: `192.168.7.${h}` },
            names.map((n) => el('hostname', {}, [], n)),
          ),
        );
      });
      for (const [n, v] of d.txts) kids.push(el('txt', { name: n, value: v }));
      for (const s of d.srvs) {
        kids.push(
          el('srv', {
            service: s.service,
            protocol: s.protocol,
            target: s.target,
            port: s.target ? String(s.port) : undefined,
          }),
        );
      }
      return el('dns', { enable: d.enable, forwardPlainNames: d.fpn }, kids);
    }),
);

/** A valid libvirt network as an element tree. */
export function networkSpec(): fc.Arbitrary<XmlSpec> {
  return fc
    .record({
      name: fc.stringMatching(/^[a-z][a-z0-9_-]{0,20}$/),
      uuid: maybe(fc.uuid()),
      mode: fc.constantFrom('none', 'nat', 'route', 'open', 'bridge'),
      dev: maybe(fc.constantFrom('eth0', 'ens3', 'enp1s0')),
      a: fc.integer({ min: 0, max: 255 }),
      b: fc.integer({ min: 0, max: 255 }),
      bridgeIdx: maybe(fc.integer({ min: 0, max: 255 })),
      stp: maybe(fc.constantFrom('on', 'off')),
      delay: maybe(fc.integer({ min: 0, max: 30 })),
      mac: maybe(mac),
      mtu: maybe(fc.integer({ min: 1280, max: 9000 })),
      domain: maybe(hostname),
      withV4: fc.boolean(),
      v4Dhcp: fc.boolean(),
      withV6: fc.boolean(),
      v6Dhcp: fc.boolean(),
      natPorts: fc.boolean(),
      route: fc.boolean(),
      options: fc.array(
        fc.constantFrom('log-queries', 'cname=a.example,b.example', 'dhcp-option=option:ntp-server,10.0.0.1'),
        {
          maxLength: 2,
        },
      ),
      ipv6attr: maybe(yesNo),
    })
    .chain((r) => {
      const v4 =
        r.withV4 || r.mode === 'nat' || r.mode === 'route' || r.route
          ? ipv4(r.a, r.b, r.v4Dhcp)
          : fc.constant(undefined);
      const v6 = r.withV6 ? ipv6(r.a, r.v6Dhcp) : fc.constant(undefined);
      return fc.tuple(fc.constant(r), v4, v6, dnsSpec);
    })
    .map(([r, v4, v6, dns]) => {
      const kids: XmlSpec[] = [el('name', {}, [], r.name)];
      if (r.uuid) kids.push(el('uuid', {}, [], r.uuid));
      if (r.mode === 'bridge') {
        kids.push(el('forward', { mode: 'bridge' }), el('bridge', { name: `br${r.a % 10}` }));
      } else {
        if (r.mode !== 'none') {
          const natKids =
            r.mode === 'nat' && r.natPorts
              ? [el('nat', {}, [el('port', { start: '1024', end: '65535' })])]
              : [];
          const dev = r.mode === 'nat' || r.mode === 'route' ? r.dev : undefined;
          kids.push(el('forward', { mode: r.mode, dev }, natKids));
        }
        kids.push(
          el('bridge', {
            name: r.bridgeIdx === undefined ? undefined : `virbr${r.bridgeIdx}`,
            stp: r.stp,
            delay: r.delay === undefined ? undefined : String(r.delay),
          }),
        );
        if (r.mac) kids.push(el('mac', { address: r.mac }));
        if (r.mtu) kids.push(el('mtu', { size: String(r.mtu) }));
        if (r.domain) kids.push(el('domain', { name: r.domain }));
        if (dns) kids.push(dns);
        if (v4) kids.push(v4);
        if (v6) kids.push(v6);
        if (v4 && r.route)
          kids.push(el('route', { address: '172.16.0.0', prefix: '16', gateway: `10.${r.a}.${r.b}.254` }));
      }
      const attrs: Record<string, string | undefined> = { ipv6: r.ipv6attr };
      if (r.options.length > 0 && r.mode !== 'bridge') {
        attrs['xmlns:dnsmasq'] = 'http://libvirt.org/schemas/network/dnsmasq/1.0';
        kids.push(
          el(
            'dnsmasq:options',
            {},
            r.options.map((v) => el('dnsmasq:option', { value: v })),
          ),
        );
      }
      return el('network', attrs, kids);
    });
}

export function validNetworkXml(): fc.Arbitrary<string> {
  return networkSpec().map((s) => specToXml(s));
}

/** Substrings that valid generated networks never contain; hostile values do. */
export const HOSTILE_MARKERS = ['INJECTED', 'dhcp-script=', 'conf-file=', '/etc/passwd', '$(reboot)'];

export function hostileString(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      'a\nINJECTED=1',
      'x\r\ndhcp-script=/tmp/evil',
      'a\u0000b',
      'tab\there',
      'comma,INJECTED',
      'eq=INJECTED',
      'hash#INJECTED',
      'quote"INJECTED',
      "apos'INJECTED",
      'back\\slash',
      '$(reboot)',
      '`id`',
      '; rm -rf / #INJECTED',
      '| nc evil 1',
      '../../../etc/passwd',
      '/etc/passwd',
      '',
      ' ',
      '-rf',
      '.',
      '..',
      '%d',
      'conf-file=/etc/passwd',
      '\u2028INJECTED',
      '\u0085INJECTED',
      '\u007fINJECTED',
      'é'.repeat(20),
      '99999999999999999999',
      '-1',
      '1.5',
      '0x10',
      'NaN',
      'yes',
      'true',
      '256.256.256.256',
      'fe80::1%eth0',
      '52:54:00:zz:00:01',
      '01:00:5e:00:00:01',
    ),
    fc.string({ maxLength: 30 }),
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.integer({ min: 300, max: 5000 }).map((n) => 'A'.repeat(n)),
    fc
      .tuple(
        fc.string({ maxLength: 10 }),
        fc.constantFrom('\n', ',', '=', '#', '\u0000', '"', '\\'),
        fc.string({ maxLength: 10 }),
      )
      .map(([a, c, b]) => `${a}${c}INJECTED${b}`),
  );
}

/** Paths of every node in a spec (as child-index lists). */
function allPaths(s: XmlSpec, prefix: number[] = []): number[][] {
  const out: number[][] = [prefix];
  s.children.forEach((c, i) => {
    out.push(...allPaths(c, [...prefix, i]));
  });
  return out;
}

function clone(s: XmlSpec): XmlSpec {
  return structuredClone(s);
}

function at(s: XmlSpec, path: number[]): XmlSpec {
  let n = s;
  for (const i of path) n = n.children[i]!;
  return n;
}

type Mutation =
  | { kind: 'attr'; pick: number; value: string }
  | { kind: 'text'; pick: number; value: string }
  | { kind: 'drop'; pick: number }
  | { kind: 'dup'; pick: number }
  | { kind: 'unknownAttr'; pick: number; value: string }
  | { kind: 'unknownElement'; pick: number }
  | { kind: 'rename'; pick: number; name: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('attr' as const), pick: fc.nat(), value: hostileString() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('text' as const), pick: fc.nat(), value: hostileString() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dup' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('unknownAttr' as const),
      pick: fc.nat(),
      value: hostileString(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unknownElement' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('rename' as const),
      pick: fc.nat(),
      name: fc.constantFrom('portgroup', 'vlan', 'bandwidth', 'virtualport', 'script', 'ip', 'host', 'dns'),
    }),
  },
);

function applyMutation(spec: XmlSpec, m: Mutation): XmlSpec {
  const s = clone(spec);
  const paths = allPaths(s);
  const path = paths[m.pick % paths.length]!;
  const node = at(s, path);
  switch (m.kind) {
    case 'attr': {
      if (node.attrs.length === 0) node.attrs.push(['value', m.value]);
      else node.attrs[m.pick % node.attrs.length]![1] = m.value;
      break;
    }
    case 'text':
      if (node.children.length === 0) node.text = m.value;
      else node.children.push({ name: 'name', attrs: [], children: [], text: m.value });
      break;
    case 'drop':
      if (path.length > 0) at(s, path.slice(0, -1)).children.splice(path[path.length - 1]!, 1);
      break;
    case 'dup':
      if (path.length > 0) at(s, path.slice(0, -1)).children.push(clone(node));
      break;
    case 'unknownAttr':
      node.attrs.push([`x${m.pick % 7}`, m.value]);
      break;
    case 'unknownElement':
      node.children.push({ name: 'unknown', attrs: [], children: [] });
      break;
    case 'rename':
      if (path.length > 0) node.name = m.name;
      break;
  }
  return s;
}

/** A valid network with 1..3 tree mutations, or with raw characters spliced into its text. */
export function mutatedNetworkXml(): fc.Arbitrary<string> {
  const treeMutated = fc
    .tuple(networkSpec(), fc.array(mutation, { minLength: 1, maxLength: 3 }))
    .map(([s, ms]) => specToXml(ms.reduce(applyMutation, s)));
  const textMutated = fc
    .tuple(
      validNetworkXml(),
      fc.nat(),
      fc.nat({ max: 5 }),
      fc.oneof(hostileString(), fc.constantFrom('<', '>', '&', '"', "'", '<!DOCTYPE x>', ']]>', '<![CDATA[')),
    )
    .map(([x, pos, del, ins]) => {
      const p = pos % (x.length + 1);
      return x.slice(0, p) + ins + x.slice(p + del);
    });
  return fc.oneof({ weight: 4, arbitrary: treeMutated }, { weight: 1, arbitrary: textMutated });
}

export function anyNetworkXml(): fc.Arbitrary<string> {
  return fc.oneof(validNetworkXml(), mutatedNetworkXml());
}
