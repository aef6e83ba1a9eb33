/**
 * The real dnsmasq (`dnsmasq --test`, a syntax check that needs no root and touches nothing) accepts
 * every config the planner renders: libvirt's 27 conformance networks (with virtnet's header and with
 * libvirt's) and a sample of fast-check-generated networks. Every hostsfile line is checked too, as a
 * `dhcp-host=` option (the hostsfile has that option's syntax). `dnsmasq:options` values are left out:
 * they are the user's own dnsmasq options, passed verbatim (libvirt's test case uses a bogus `foo=bar`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import type { Network } from '../../src/model/network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import {
  libvirtDnsmasqPaths,
  libvirtHeader,
  renderDnsmasqConf,
  renderHostsfile,
} from '../../src/plan/dnsmasq.js';
import { missingPrereqs } from '../helpers/require.js';
import { conformanceDir, missingShared } from '../helpers/shared.js';
import { networkXml } from '../plan/dnsmasq/xml-arbitraries.js';

const missing = missingPrereqs(['dnsmasq'], { root: false });
const noShared = missingShared(resolve(conformanceDir, 'cases.json'));

describe.skipIf(missing !== undefined)('dnsmasq --test accepts the rendered configs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'virtnet-h2-syntax-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Render `net` (without its dnsmasq:options) plus its hostsfile as dhcp-host lines; run dnsmasq --test. */
  function syntaxCheck(net: Network, header?: string): string {
    const bare = { ...net, dnsmasqOptions: [] };
    const paths = libvirtDnsmasqPaths(dir, net.name);
    const conf = renderDnsmasqConf(bare, paths, header === undefined ? {} : { header });
    const hosts = renderHostsfile(bare)
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => `dhcp-host=${l}\n`)
      .join('');
    const file = join(dir, 'test.conf');
    writeFileSync(file, conf + hosts);
    try {
      return execFileSync('dnsmasq', ['--test', `--conf-file=${file}`], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string };
      throw new Error(`dnsmasq --test refused:\n${conf + hosts}\n${err.stderr ?? ''}${err.stdout ?? ''}`);
    }
  }

  it.skipIf(noShared !== undefined)("libvirt's conformance networks", () => {
    const cases = JSON.parse(readFileSync(resolve(conformanceDir, 'cases.json'), 'utf8')).networkxml2conf as {
      xml: string;
    }[];
    expect(cases.length).toBe(27);
    for (const c of cases) {
      const { network } = parseNetworkXml(readFileSync(resolve(conformanceDir, c.xml), 'utf8'));
      syntaxCheck(network);
      syntaxCheck(network, libvirtHeader(network.name));
    }
  });

  it('generated networks (a sample of 300 that render)', () => {
    let checked = 0;
    for (const xml of fc.sample(networkXml, 3000)) {
      if (checked >= 300) break;
      let net: Network;
      try {
        net = parseNetworkXml(xml).network;
        syntaxCheck(net);
      } catch (e) {
        if (e instanceof ValidationError) continue;
        throw e;
      }
      checked++;
    }
    expect(checked).toBe(300);
  }, 300_000);
});
