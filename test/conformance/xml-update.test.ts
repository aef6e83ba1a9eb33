/**
 * libvirt's networkxml2xmlupdate conformance cases (virNetworkUpdate), read in place from ../shared:
 * parse `netXml`, apply the `updateXml` snippet with updateNetwork, format, compare with
 * `expectedXml`; cases expecting failure must fail with one of virtnet's typed errors.
 *
 * Note on parentIndex: libvirt 9.9's test program fills its `testInfo` struct positionally with
 * `flags` and `parentIndex` swapped, so every case really runs with parentIndex 0 (and formats with
 * the case's index as flags; all of them include VIR_NETWORK_XML_INACTIVE). The expected outputs
 * were produced that way (e.g. append-dhcp-range, "index 1", lands in ip[0]), so this suite does the same.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../src/errors.js';
import { formatNetworkXml } from '../../src/model/format-network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { type UpdateCommand, type UpdateSection, updateNetwork } from '../../src/model/update-network.js';
import { conformanceDir, missingShared } from '../helpers/shared.js';
import { unsupported } from './unsupported.js';

interface Case {
  name: string;
  section: string;
  command: string;
  parentIndex: number;
  updateXml: string;
  netXml: string;
  expectedXml: string | null;
  expectFailure: boolean;
}

const skip = missingShared(resolve(conformanceDir, 'cases.json'));
const cases: Case[] = skip
  ? []
  : (JSON.parse(readFileSync(resolve(conformanceDir, 'cases.json'), 'utf8')).networkxml2xmlupdate as Case[]);
const listed = unsupported.networkxml2xmlupdate ?? {};
const read = (p: string): string => readFileSync(resolve(conformanceDir, p), 'utf8');

const section = (s: string): UpdateSection => s.toLowerCase().replaceAll('_', '-') as UpdateSection;
const command = (c: string): UpdateCommand => c.toLowerCase().replaceAll('_', '-') as UpdateCommand;

describe.skipIf(skip !== undefined)('conformance: networkxml2xmlupdate', () => {
  let passed = 0;
  let unsupportedCount = 0;
  afterAll(() => {
    console.log(
      `networkxml2xmlupdate: ${passed} passed, ${unsupportedCount} unsupported, of ${cases.length}`,
    );
  });

  it('has the 41 cases libvirt 9.9 ships, and every listed case exists', () => {
    expect(cases.length).toBe(41);
    for (const name of Object.keys(listed)) expect(cases.map((c) => c.name)).toContain(name);
  });

  cases.forEach((c, idx) => {
    const title = `${c.name} #${idx}`;
    const reason = listed[c.name];
    if (reason !== undefined) {
      unsupportedCount++;
      // Listed cases still run: they must NOT pass (else the list is stale and must shrink).
      it(`${title} is unsupported (${reason}) and still does not pass`, () => {
        let ok = false;
        try {
          const { network } = parseNetworkXml(read(c.netXml));
          const updated = updateNetwork(
            network,
            section(c.section),
            command(c.command),
            read(c.updateXml),
            0,
          );
          ok =
            !c.expectFailure &&
            formatNetworkXml(updated, { inactive: true }) === read(c.expectedXml as string);
        } catch (e) {
          expect(
            e instanceof ValidationError || e instanceof NotFoundError || e instanceof ConflictError,
            `expected a typed failure, got ${String(e)}`,
          ).toBe(true);
          // A case that expects failure and fails for the unsupported feature is still unsupported: the
          // list names the reason (portgroups), which the error must mention.
        }
        expect(ok, `${title} passes now: remove it from unsupported.ts`).toBe(false);
      });
      return;
    }
    it(title, () => {
      const run = (): string => {
        const { network } = parseNetworkXml(read(c.netXml));
        const updated = updateNetwork(network, section(c.section), command(c.command), read(c.updateXml), 0);
        return formatNetworkXml(updated, { inactive: true });
      };
      if (c.expectFailure) {
        let err: unknown;
        try {
          run();
        } catch (e) {
          err = e;
        }
        expect(
          err instanceof ValidationError || err instanceof NotFoundError || err instanceof ConflictError,
          `expected a typed failure, got ${String(err)}`,
        ).toBe(true);
      } else {
        expect(run()).toBe(read(c.expectedXml as string));
      }
      passed++;
    });
  });
});
