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
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import type { Network } from '../../src/model/network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { renderAddnhosts, renderDnsmasqConf, renderHostsfile } from '../../src/plan/dnsmasq.js';
import { conformanceDir, missingShared } from '../helpers/shared.js';
import { mutatedSeeds, networkXml } from './dnsmasq/xml-arbitraries.js';

// ---------------------------------------------------------------------------------------------------
// Checks

const A4 = String.raw`\d{1,3}(?:\.\d{1,3}){3}`;
const A6 = '[0-9a-f:]*:[0-9a-f:.]*';
const ADDR = `(?:${A4}|${A6})`;
/** A value inside an option: nothing that splits it (',' '='), starts a comment ('#'), ends it (space)
 * or is unquoted by dnsmasq ('"' '\\'). */
const NAME = '[^,=#\\s"\\\\]+';
const LEASE = String.raw`(?:\d+[smh]|infinite)`;
const PATH = String.raw`/[^\s,#"\\=]*`;

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
    expect(rendered).toBeGreaterThan(1500); // ~2,600 expected
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
