/**
 * libvirt's networkxml2xml conformance cases, read in place from ../shared: parse `in`, format
 * (INACTIVE when the case says so), compare with `out` byte for byte. Cases expected to fail must
 * fail with ValidationError. Cases listed in unsupported.ts are reported, not run.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { formatNetworkXml } from '../../src/model/format-network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { conformanceDir, missingShared } from '../helpers/shared.js';
import { unsupported } from './unsupported.js';

interface Case {
  name: string;
  flags: string[];
  expect: 'success' | 'parse-error';
  in: string;
  out: string | null;
}

const skip = missingShared(resolve(conformanceDir, 'cases.json'));
const cases: Case[] = skip
  ? []
  : (JSON.parse(readFileSync(resolve(conformanceDir, 'cases.json'), 'utf8')).networkxml2xml as Case[]);
const listed = unsupported.networkxml2xml ?? {};

describe.skipIf(skip !== undefined)('conformance: networkxml2xml', () => {
  let passed = 0;
  afterAll(() => {
    const n = Object.keys(listed).length;
    console.log(`networkxml2xml: ${passed} passed, ${n} unsupported, of ${cases.length}`);
  });

  it('has the 46 cases libvirt 9.9 ships, and every listed case exists', () => {
    expect(cases.length).toBe(46);
    for (const name of Object.keys(listed)) expect(cases.map((c) => c.name)).toContain(name);
  });

  for (const c of cases) {
    const reason = listed[c.name];
    if (reason !== undefined) {
      // Listed cases still run: they must NOT pass (else the list is stale and must shrink).
      it(`${c.name} is unsupported (${reason}) and still does not round-trip`, () => {
        let same = false;
        try {
          const { network } = parseNetworkXml(readFileSync(resolve(conformanceDir, c.in), 'utf8'));
          const got = formatNetworkXml(network, { inactive: c.flags.includes('VIR_NETWORK_XML_INACTIVE') });
          same = c.out !== null && got === readFileSync(resolve(conformanceDir, c.out as string), 'utf8');
        } catch (e) {
          expect(e).toBeInstanceOf(ValidationError);
        }
        expect(same, `${c.name} passes now: remove it from unsupported.ts`).toBe(false);
      });
      continue;
    }
    it(c.name, () => {
      const input = readFileSync(resolve(conformanceDir, c.in), 'utf8');
      if (c.expect === 'parse-error') {
        let err: unknown;
        try {
          parseNetworkXml(input);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ValidationError);
        passed++;
        return;
      }
      const expected = readFileSync(resolve(conformanceDir, c.out as string), 'utf8');
      const { network } = parseNetworkXml(input);
      const got = formatNetworkXml(network, { inactive: c.flags.includes('VIR_NETWORK_XML_INACTIVE') });
      expect(got).toBe(expected);
      passed++;
    });
  }
});
