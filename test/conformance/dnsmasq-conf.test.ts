/**
 * libvirt's networkxml2conf conformance cases, read in place from ../shared: parse the network XML,
 * render the dnsmasq config with libvirt's paths (/var/lib/libvirt/dnsmasq/<escaped name>.*) and
 * libvirt's header, and compare with `<case>.conf` byte for byte; compare the DHCP hostsfile with
 * `<case>.hostsfile` when the case has one, and expect an empty hostsfile when it has none (libvirt
 * writes no line then). Cases listed in unsupported.ts are reported, not run.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import {
  libvirtDnsmasqPaths,
  libvirtHeader,
  renderDnsmasqConf,
  renderHostsfile,
} from '../../src/plan/dnsmasq.js';
import { conformanceDir, missingShared } from '../helpers/shared.js';
import { unsupported } from './unsupported.js';

interface Case {
  name: string;
  xml: string;
  conf: string;
  hostsfile: string | null;
}

const skip = missingShared(resolve(conformanceDir, 'cases.json'));
const cases: Case[] = skip
  ? []
  : (JSON.parse(readFileSync(resolve(conformanceDir, 'cases.json'), 'utf8')).networkxml2conf as Case[]);
const listed = unsupported.networkxml2conf ?? {};

describe.skipIf(skip !== undefined)('conformance: networkxml2conf', () => {
  let passed = 0;
  afterAll(() => {
    const n = Object.keys(listed).length;
    console.log(`networkxml2conf: ${passed} passed, ${n} unsupported, of ${cases.length}`);
  });

  it('has the 27 cases libvirt 9.9 ships (14 with a hostsfile), and every listed case exists', () => {
    expect(cases.length).toBe(27);
    expect(cases.filter((c) => c.hostsfile !== null).length).toBe(14);
    for (const name of Object.keys(listed)) expect(cases.map((c) => c.name)).toContain(name);
  });

  for (const c of cases) {
    const reason = listed[c.name];
    if (reason !== undefined) {
      it.skip(`${c.name} (unsupported: ${reason})`, () => {});
      continue;
    }
    it(c.name, () => {
      const xml = readFileSync(resolve(conformanceDir, c.xml), 'utf8');
      const { network } = parseNetworkXml(xml);
      const paths = libvirtDnsmasqPaths('/var/lib/libvirt/dnsmasq', network.name);
      const conf = renderDnsmasqConf(network, paths, { header: libvirtHeader(network.name) });
      expect(conf).toBe(readFileSync(resolve(conformanceDir, c.conf), 'utf8'));
      const hosts = renderHostsfile(network);
      expect(hosts).toBe(
        c.hostsfile === null ? '' : readFileSync(resolve(conformanceDir, c.hostsfile), 'utf8'),
      );
      passed++;
    });
  }
});
