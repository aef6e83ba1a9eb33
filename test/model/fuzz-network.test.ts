/**
 * Property tests of parseNetworkXml over ≥ 10,000 generated and mutated network XMLs: parsing
 * succeeds or throws ValidationError (nothing else); a parsed network carries no string with a
 * newline or control character (description and metadata, which never reach a config file, aside);
 * valid generated networks always parse and survive format → parse → format unchanged.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { formatNetworkXml } from '../../src/model/format-network.js';
import type { Network } from '../../src/model/network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { hostileString, mutatedNetworkXml, validNetworkXml } from '../helpers/arbitraries.js';

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Every string reachable in the model, with its path (description/metadataXml excluded). */
function strings(v: unknown, path = 'network', out: [string, string][] = []): [string, string][] {
  if (typeof v === 'string') out.push([path, v]);
  else if (Array.isArray(v)) {
    v.forEach((x, i) => {
      strings(x, `${path}[${i}]`, out);
    });
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (path === 'network' && (k === 'description' || k === 'metadataXml')) continue;
      strings(x, `${path}.${k}`, out);
    }
  }
  return out;
}

function parseOrValidationError(xml: string): Network | undefined {
  try {
    return parseNetworkXml(xml).network;
  } catch (e) {
    if (!(e instanceof ValidationError)) throw new Error(`non-ValidationError ${String(e)} for:\n${xml}`);
    expect(e.problems.length).toBeGreaterThan(0);
    for (const p of e.problems) expect(typeof p.path).toBe('string');
    return undefined;
  }
}

function assertClean(net: Network): void {
  for (const [p, s] of strings(net)) {
    if (CONTROL.test(s)) throw new Error(`control character in ${p}: ${JSON.stringify(s)}`);
  }
}

describe('fuzz: parseNetworkXml', () => {
  it('valid generated networks parse, are clean, and round-trip through the formatter (3,000)', () => {
    fc.assert(
      fc.property(validNetworkXml(), (xml) => {
        const { network } = parseNetworkXml(xml);
        assertClean(network);
        const once = formatNetworkXml(network);
        expect(formatNetworkXml(parseNetworkXml(once).network)).toBe(once);
      }),
      { numRuns: 3000 },
    );
  }, 300_000);

  it('mutated networks: ValidationError or a clean network (6,000)', () => {
    let accepted = 0;
    fc.assert(
      fc.property(mutatedNetworkXml(), (xml) => {
        const net = parseOrValidationError(xml);
        if (net) {
          accepted++;
          assertClean(net);
        }
      }),
      { numRuns: 6000 },
    );
    // Some mutations are harmless (e.g. a dropped optional element): both outcomes must occur.
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(6000);
  }, 300_000);

  it('arbitrary strings and hostile values as the whole input (1,000)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), hostileString()), (s) => {
        expect(parseOrValidationError(s)).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
  });

  it('hostile values in every field never survive into the model (1,000)', () => {
    const fields = [
      (v: string) => `<network><name>${v}</name></network>`,
      (v: string) => `<network><name>n</name><bridge name='${v}'/></network>`,
      (v: string) => `<network><name>n</name><dns><txt name='t' value='${v}'/></dns></network>`,
      (v: string) =>
        `<network><name>n</name><dns><host ip='10.0.0.1'><hostname>${v}</hostname></host></dns></network>`,
      (v: string) =>
        `<network><name>n</name><ip address='10.0.0.1' prefix='24'><dhcp><host mac='52:54:00:00:00:01' name='${v}' ip='10.0.0.5'/></dhcp></ip></network>`,
      (v: string) =>
        `<network><name>n</name><ip address='10.0.0.1' prefix='24'><tftp root='${v}'/></ip></network>`,
      (v: string) => `<network><name>n</name><domain name='${v}'/></network>`,
      (v: string) =>
        `<network xmlns:d='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>n</name><d:options><d:option value='${v}'/></d:options></network>`,
    ];
    const esc = (v: string): string =>
      v
        .replaceAll('&', '&amp;')
        .replaceAll('<', '&lt;')
        .replaceAll("'", '&apos;')
        .replaceAll('\n', '&#10;')
        .replaceAll('\r', '&#13;');
    fc.assert(
      fc.property(fc.nat({ max: fields.length - 1 }), hostileString(), (i, v) => {
        const net = parseOrValidationError(fields[i]!(esc(v)));
        if (net) assertClean(net);
      }),
      { numRuns: 1000 },
    );
  });
});
