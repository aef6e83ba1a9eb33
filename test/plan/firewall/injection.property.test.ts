/**
 * Property: no input value can create, split or extend a line or a statement of a rendered firewall
 * script. Networks and port-forward requests are generated directly as model objects (so that values
 * the XML parser would already refuse reach the planner too — defense in depth), mixing valid values
 * with hostile ones (newlines, quotes, braces, ';', '#', '+', '*', wildcards, non-canonical and
 * wrong-family addresses, bad prefixes and ports). For each: planning either fails with a
 * ValidationError, or every renderer succeeds and every line of its output matches the fixed grammar
 * of that backend, in which every slot a value can fill admits only a safe token, and no hostile
 * marker appears anywhere. 6,000 networks + 4,000 port-forward requests, plus 2,000 network XML
 * documents through the real parser (parse → plan → render).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.js';
import type { IpDef, Network } from '../../../src/model/network.js';
import { parseNetworkXml } from '../../../src/model/parse-network.js';
import { renderIptables } from '../../../src/plan/firewall/iptables.js';
import { renderNftables } from '../../../src/plan/firewall/nftables.js';
import {
  planPortForwards,
  renderPortForwardsIptables,
  renderPortForwardsNftables,
} from '../../../src/plan/firewall/portforward.js';
import { planFirewall } from '../../../src/plan/firewall/rules.js';
import { renderLibvirtArgs } from '../../conformance/libvirt-args.js';

const MARKER = 'INJECTED';

const hostile = fc.constantFrom(
  `a\n${MARKER}`,
  `x\r\n${MARKER}`,
  `br"${MARKER}`,
  `br'${MARKER}`,
  `br;${MARKER}`,
  `br#${MARKER}`,
  `br{${MARKER}}`,
  `br}${MARKER}`,
  `-${MARKER}`,
  `!${MARKER}`,
  `br ${MARKER}`,
  `br\t${MARKER}`,
  `br\u0000${MARKER}`,
  'virbr+',
  'br*',
  'eth0:1',
  '',
  `${MARKER}\ndelete table ip filter`,
  `10.0.0.1\n${MARKER}`,
  `10.0.0.1 ${MARKER}`,
  '10.0.0.1/24',
  '192.168.001.1',
  '2001:DB8::1',
  '::ffff:10.0.0.1',
  '1.2.3.4.5',
  'a'.repeat(16),
);

const safeIf = fc.constantFrom('virbr0', 'virbr12', 'br-lan', 'eth0', 'enp0s7', 'v.1_x');
const ifname = fc.oneof({ weight: 3, arbitrary: safeIf }, { weight: 1, arbitrary: hostile });
const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const v6 = fc
  .tuple(fc.nat(0xffff), fc.nat(0xffff))
  .map(([a, b]) => `fd00:${a.toString(16)}::${b.toString(16)}`);
const addr = fc.oneof(
  { weight: 3, arbitrary: v4 },
  { weight: 2, arbitrary: v6 },
  { weight: 1, arbitrary: hostile },
);
const prefix = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 128 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 1.5, Number.NaN, 129, 1e9) },
);
const port = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 65535 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 70000, 1.5, Number.NaN) },
);
// Names only ever reach the output sanitized inside identifiers, so they carry hostile characters but
// not the marker (a sanitized marker in a table name is not an injection).
const name = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9_.-]{0,30}$/),
  hostile.map((h) => h.replaceAll(MARKER, 'nm')),
  fc.string({ maxLength: 70 }).filter((x) => !x.includes(MARKER)),
);

const ipDef: fc.Arbitrary<IpDef> = fc
  .record({
    family: fc.constantFrom('ipv4' as const, 'ipv6' as const),
    address: addr,
    prefix,
    dhcp: fc.boolean(),
    tftp: fc.option(fc.oneof(fc.constant('/srv/tftp'), hostile), { nil: undefined }),
  })
  .map((r) => ({
    family: r.family,
    address: r.address,
    prefix: r.prefix,
    ...(r.dhcp ? { dhcp: { ranges: [{ start: r.address, end: r.address }], hosts: [] } } : {}),
    ...(r.tftp !== undefined ? { tftpRoot: r.tftp } : {}),
  }));

const network: fc.Arbitrary<Network> = fc
  .record({
    name,
    bridge: ifname,
    mode: fc.constantFrom(
      'nat' as const,
      'route' as const,
      'none' as const,
      'open' as const,
      'bridge' as const,
    ),
    dev: fc.option(ifname, { nil: undefined }),
    ips: fc.array(ipDef, { maxLength: 4 }),
    natAddr: fc.option(fc.record({ start: addr, end: addr }), { nil: undefined }),
    natPort: fc.option(fc.record({ start: port, end: port }), { nil: undefined }),
    natV6: fc.boolean(),
    ipv6: fc.boolean(),
  })
  .map((r) => ({
    name: r.name,
    uuid: '81ff0d90-c91e-6742-64da-4a736edb9a9b',
    forward: {
      mode: r.mode,
      ...(r.dev !== undefined ? { dev: r.dev } : {}),
      interfaces: r.dev !== undefined ? [r.dev] : [],
      nat: {
        ...(r.natAddr ? { address: r.natAddr } : {}),
        ...(r.natPort ? { port: r.natPort } : {}),
        ipv6: r.natV6,
      },
    },
    bridge: { name: r.bridge },
    ips: r.ips,
    routes: [],
    ipv6: r.ipv6,
    dnsmasqOptions: [],
    ignored: [],
  }));

// Safe tokens: what a value may become in a rendered line (no quote, brace, ';', '#', space, control).
const BARE = String.raw`[A-Za-z0-9_.:/,\-\[\]!=]+`;
const QUOTED_IF = `"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}"`;
const NFT_LINE = new RegExp(
  [
    String.raw`^(delete )?table (ip|ip6) [A-Za-z0-9_]+( \{)?$`,
    String.raw`^\tchain [a-z_]+ \{$`,
    String.raw`^\t\ttype (filter|nat) hook (forward|prerouting|output|postrouting) priority -?\d+; policy accept;$`,
    String.raw`^\t\t(${BARE}|${QUOTED_IF})( (${BARE}|${QUOTED_IF}))*$`,
    String.raw`^\t?\}$`,
  ].join('|'),
);
const IPT_LINE = new RegExp(
  [
    String.raw`^\*(filter|nat|mangle)$`,
    '^COMMIT$',
    String.raw`^:[A-Za-z0-9_-]{1,28} - \[0:0\]$`,
    `^-[AIDFX] [A-Za-z0-9_-]{1,28}( ${BARE})*$`,
  ].join('|'),
);

function checkLines(text: string, grammar: RegExp, what: string): void {
  expect(text.includes(MARKER), `${what} contains an injected marker`).toBe(false);
  if (text === '') return;
  expect(text.endsWith('\n'), `${what} ends with a newline`).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    if (!grammar.test(line)) throw new Error(`${what}: line outside the grammar: ${JSON.stringify(line)}`);
  }
}

describe('firewall renderers: no line or statement comes from an input value', () => {
  it('networks (6,000 generated)', () => {
    let planned = 0;
    fc.assert(
      fc.property(network, (n) => {
        let rs: ReturnType<typeof planFirewall>;
        try {
          rs = planFirewall(n);
        } catch (e) {
          if (!(e instanceof ValidationError)) throw e;
          return;
        }
        planned++;
        const nft = renderNftables(rs);
        checkLines(nft.apply, NFT_LINE, 'nft apply');
        checkLines(nft.remove, NFT_LINE, 'nft remove');
        const ipt = renderIptables(rs);
        for (const f of [ipt.v4, ipt.v6]) {
          checkLines(f.apply, IPT_LINE, 'iptables apply');
          checkLines(f.remove, IPT_LINE, 'iptables remove');
        }
        // libvirt's command log: one command per rule, nothing injected.
        for (const format of ['iptables', 'nftables'] as const) {
          const log = renderLibvirtArgs(rs, format);
          expect(log.includes(MARKER)).toBe(false);
          const count = (log.match(/^(iptables|ip6tables|nft) \\$/gm) ?? []).length;
          const expected =
            format === 'iptables'
              ? rs.rules.length
              : rs.rules.filter((r) => !['host-input', 'host-output', 'checksum-fill'].includes(r.kind))
                  .length;
          expect(count).toBe(expected);
        }
      }),
      { numRuns: 6000 },
    );
    // The generator must reach the renderers often, or the property proves little.
    expect(planned).toBeGreaterThan(1500);
  });

  it('port-forward requests (4,000 generated)', () => {
    const forward = fc.constantFrom('ipv4' as const, 'ipv6' as const).chain((family) => {
      const same = family === 'ipv4' ? v4 : v6;
      const a = fc.oneof({ weight: 8, arbitrary: same }, { weight: 1, arbitrary: addr });
      return fc.record({
        proto: fc.oneof(
          { weight: 10, arbitrary: fc.constantFrom('tcp' as const, 'udp' as const) },
          fc.constant('sctp' as 'tcp'),
        ),
        hostPort: port,
        guestIp: a,
        guestPort: port,
        family: fc.constant(family),
        hostAddress: fc.option(a, { nil: undefined, freq: 2 }),
      });
    });
    const req = fc.record({
      network: name,
      domain: name,
      bridge: fc.oneof({ weight: 6, arbitrary: safeIf }, { weight: 1, arbitrary: hostile }),
      forwards: fc.array(forward, { maxLength: 3 }),
      subnets: fc.option(
        fc.array(
          fc.oneof(
            addr.map((a) => `${a}/24`),
            hostile,
          ),
          { maxLength: 2 },
        ),
        {
          nil: undefined,
        },
      ),
    });
    let planned = 0;
    fc.assert(
      fc.property(req, (input) => {
        const clean = {
          ...input,
          forwards: input.forwards.map((f) => {
            const { hostAddress, ...o } = f;
            return hostAddress === undefined ? o : { ...o, hostAddress };
          }),
          ...(input.subnets === undefined ? {} : { subnets: input.subnets }),
        };
        let rs: ReturnType<typeof planPortForwards>;
        try {
          rs = planPortForwards(clean);
        } catch (e) {
          if (!(e instanceof ValidationError)) throw e;
          return;
        }
        planned++;
        const nft = renderPortForwardsNftables(rs);
        checkLines(nft.apply, NFT_LINE, 'nft apply');
        checkLines(nft.remove, NFT_LINE, 'nft remove');
        const ipt = renderPortForwardsIptables(rs);
        for (const f of [ipt.v4, ipt.v6]) {
          checkLines(f.apply, IPT_LINE, 'iptables apply');
          checkLines(f.remove, IPT_LINE, 'iptables remove');
        }
        for (const key of Object.keys(rs.sysctls))
          expect(key).toMatch(/^net\.ipv4\.conf\.[A-Za-z0-9_.-]+\.route_localnet$/);
      }),
      { numRuns: 4000 },
    );
    expect(planned).toBeGreaterThan(500);
  });

  it('network XML through the parser (2,000 generated)', () => {
    const xmlEsc = (v: string) =>
      v.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll("'", '&apos;').replaceAll('\n', '&#10;');
    const attr = (k: string, v: string | undefined) => (v === undefined ? '' : ` ${k}='${xmlEsc(v)}'`);
    const val = <T>(good: fc.Arbitrary<T>) =>
      fc.oneof({ weight: 4, arbitrary: good.map(String) }, { weight: 1, arbitrary: hostile });
    const doc = fc
      .record({
        name: fc.oneof(
          fc.stringMatching(/^[a-z][a-z0-9_-]{0,20}$/),
          hostile.map((h) => h.replaceAll(MARKER, 'nm')),
        ),
        mode: fc.constantFrom(undefined, 'nat', 'route', 'open'),
        dev: fc.option(val(safeIf), { nil: undefined }),
        bridge: val(safeIf),
        v4: fc.option(fc.record({ a: val(v4), p: val(fc.integer({ min: 8, max: 30 })) }), { nil: undefined }),
        v6: fc.option(fc.record({ a: val(v6), p: val(fc.integer({ min: 48, max: 64 })) }), {
          nil: undefined,
        }),
        port: fc.option(
          fc.record({
            s: val(fc.integer({ min: 1, max: 3000 })),
            e: val(fc.integer({ min: 3001, max: 65535 })),
          }),
          {
            nil: undefined,
          },
        ),
        natAddr: fc.option(val(v4), { nil: undefined }),
        natV6: fc.boolean(),
      })
      .map((r) => {
        const nat =
          r.mode === 'nat' && (r.port || r.natAddr || r.natV6)
            ? `<nat${r.natV6 ? " ipv6='yes'" : ''}>${r.natAddr ? `<address${attr('start', r.natAddr)}${attr('end', r.natAddr)}/>` : ''}${r.port ? `<port${attr('start', r.port.s)}${attr('end', r.port.e)}/>` : ''}</nat>`
            : '';
        const forward = r.mode
          ? `<forward${attr('mode', r.mode)}${attr('dev', r.mode === 'open' ? undefined : r.dev)}>${nat}</forward>`
          : '';
        const ip4 = r.v4 ? `<ip${attr('address', r.v4.a)}${attr('prefix', r.v4.p)}/>` : '';
        const ip6 = r.v6 ? `<ip family='ipv6'${attr('address', r.v6.a)}${attr('prefix', r.v6.p)}/>` : '';
        return `<network><name>${xmlEsc(r.name)}</name>${forward}<bridge${attr('name', r.bridge)}/>${ip4}${ip6}</network>`;
      });
    let planned = 0;
    fc.assert(
      fc.property(doc, (xml) => {
        let rs: ReturnType<typeof planFirewall>;
        try {
          rs = planFirewall(parseNetworkXml(xml, { fillDefaults: true }).network);
        } catch (e) {
          if (!(e instanceof ValidationError)) throw e;
          return;
        }
        planned++;
        const nft = renderNftables(rs);
        checkLines(nft.apply, NFT_LINE, 'nft apply');
        checkLines(nft.remove, NFT_LINE, 'nft remove');
        const ipt = renderIptables(rs);
        for (const f of [ipt.v4, ipt.v6]) {
          checkLines(f.apply, IPT_LINE, 'iptables apply');
          checkLines(f.remove, IPT_LINE, 'iptables remove');
        }
      }),
      { numRuns: 2000 },
    );
    expect(planned).toBeGreaterThan(300);
  });
});
