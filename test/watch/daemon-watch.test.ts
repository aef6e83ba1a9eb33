import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { networkCodec } from '../../src/config/codec.js';
import { invalidReason, watchConfigDir } from '../../src/watch/daemon-watch.js';

const check = (xml: string) => networkCodec.parse(xml, { usedBridges: [] }).network.name;
const good = (name: string) =>
  `<network><name>${name}</name><bridge name='vh8w0'/><ip address='10.70.0.1' prefix='24'/></network>`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('daemon config watch', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vh8-dw-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('invalidReason: valid, removed, bad XML, bad value, wrong name', async () => {
    const p = join(dir, 'lab.xml');
    writeFileSync(p, good('lab'));
    expect(await invalidReason('lab', p, check)).toBeUndefined();
    expect(await invalidReason('gone', join(dir, 'gone.xml'), check)).toBeUndefined();
    writeFileSync(p, '<network><name>lab</name>');
    expect(await invalidReason('lab', p, check)).toMatch(/well-formed|XML/i);
    writeFileSync(p, good('lab').replace('10.70.0.1', '10.70.0.999'));
    expect(await invalidReason('lab', p, check)).toMatch(/10\.70\.0\.999/);
    writeFileSync(p, good('other'));
    expect(await invalidReason('lab', p, check)).toBe(
      "the file defines network 'other': it must be named other.xml",
    );
  });

  it('a valid change reloads; an invalid file is announced and does not reload', async () => {
    let reloads = 0;
    const invalid: string[] = [];
    const log = { info: () => {}, warning: () => {}, error: () => {} } as unknown as Parameters<
      typeof watchConfigDir
    >[0]['log'];
    const w = await watchConfigDir({
      dir,
      check,
      reload: async () => {
        reloads++;
      },
      onInvalid: (name) => invalid.push(name),
      log,
      debounceMs: 30,
    });
    try {
      writeFileSync(join(dir, 'lab.xml'), good('lab'));
      const until = async (f: () => boolean) => {
        const end = Date.now() + 3000;
        while (!f() && Date.now() < end) await sleep(10);
      };
      await until(() => reloads === 1);
      expect(reloads).toBe(1);
      writeFileSync(join(dir, 'lab.xml'), 'garbage');
      await until(() => invalid.length === 1);
      expect(invalid).toEqual(['lab']);
      expect(reloads).toBe(1);
      unlinkSync(join(dir, 'lab.xml'));
      await until(() => reloads === 2);
      expect(reloads).toBe(2);
      writeFileSync(join(dir, 'lab.xml.new'), good('lab'));
      await sleep(200);
      expect(reloads).toBe(2);
    } finally {
      await w.close();
    }
  });
});
