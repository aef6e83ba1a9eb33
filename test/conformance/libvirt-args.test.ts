/**
 * The planner against libvirt's firewall test data with hand-built networks (no XML parser involved):
 * every expected log in ../shared is reproduced from the equivalent `Network` object. The XML-driven
 * suite is test/conformance/firewall.test.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planFirewall } from '../../src/plan/firewall/rules.js';
import { conformanceDir, missingShared } from '../helpers/shared.js';
import { libvirtCases } from '../plan/firewall/fixtures.js';
import { formatCommand, renderLibvirtArgs, shellEscape } from './libvirt-args.js';

const skip = missingShared(resolve(conformanceDir, 'networkxml2firewalldata'));
const read = (rel: string) => readFileSync(resolve(conformanceDir, rel), 'utf8');

describe('libvirt argv formatting', () => {
  it('quotes shell-special arguments like libvirt', () => {
    expect(shellEscape('!')).toBe("'!'");
    expect(shellEscape('!=')).toBe("'!='");
    expect(shellEscape(':1024-65535')).toBe(':1024-65535');
    expect(shellEscape('related,established')).toBe('related,established');
    expect(shellEscape("a'b")).toBe("'a'\\''b'");
  });
  it('breaks lines like libvirt for each format', () => {
    expect(
      formatCommand(['iptables', '-w', '--table', 'nat', '--source', '1.0.0.0/8', '!', '-j'], 'iptables'),
    ).toBe("iptables \\\n-w \\\n--table nat \\\n--source 1.0.0.0/8 '!' \\\n-j\n");
    expect(formatCommand(['nft', '-ae', 'insert', 'rule', 'ip'], 'nftables')).toBe(
      'nft \\\n-ae insert \\\nrule \\\nip\n',
    );
  });
});

describe.skipIf(skip !== undefined)('hand-built networks reproduce libvirt logs', () => {
  const v99 = [
    'nat-default',
    'nat-tftp',
    'nat-many-ips',
    'nat-no-dhcp',
    'nat-ipv6',
    'nat-ipv6-masquerade',
    'route-default',
  ];
  for (const name of v99) {
    it(`${name} (9.9 iptables)`, () => {
      const full = renderLibvirtArgs(planFirewall(libvirtCases[name]!), 'iptables', { includeBase: true });
      const base = read('networkxml2firewalldata/base.args');
      expect(full.startsWith(base)).toBe(true);
      expect(full.slice(base.length)).toBe(read(`networkxml2firewalldata/${name}-linux.args`));
    });
  }
  const nftCases: [string, 'nftables' | 'iptables'][] = [];
  for (const name of Object.keys(libvirtCases)) {
    for (const b of ['nftables', 'iptables'] as const) {
      try {
        read(`networkxml2firewalldata-nft/${name}-linux.${b}`);
        nftCases.push([name, b]);
      } catch {
        // not in the transcription
      }
    }
  }
  it('covers 9 nftables and 7 iptables files of the -nft folder', () => {
    expect(nftCases.filter(([, b]) => b === 'nftables').length).toBe(9);
    expect(nftCases.filter(([, b]) => b === 'iptables').length).toBe(7);
  });
  for (const [name, b] of nftCases) {
    it(`${name} (≥10 ${b})`, () => {
      const full = renderLibvirtArgs(planFirewall(libvirtCases[name]!), b, { includeBase: true });
      const base = read(`networkxml2firewalldata-nft/base.${b}`);
      expect(full.startsWith(base)).toBe(true);
      expect(full.slice(base.length)).toBe(read(`networkxml2firewalldata-nft/${name}-linux.${b}`));
    });
  }
});
