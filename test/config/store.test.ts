import { lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigStore } from '../../src/config/store.js';

describe('ConfigStore (config dir as the source of truth)', () => {
  let dir: string;
  let store: ConfigStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vh7-store-'));
    store = new ConfigStore(join(dir, 'networks'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes <name>.xml atomically, reads only *.xml files', async () => {
    await store.write('a', '<network><name>a</name></network>');
    writeFileSync(join(store.dir, 'a.xml~'), 'backup');
    writeFileSync(join(store.dir, '.b.xml.swp'), 'swap');
    writeFileSync(join(store.dir, '.hidden.xml'), 'hidden');
    const { files, unreadable } = await store.readAll();
    expect(files.map((f) => f.stem)).toEqual(['a']);
    expect(files[0]!.xml).toBe('<network><name>a</name></network>');
    expect(unreadable).toEqual([]);
    expect(readdirSync(store.dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('autostart is a libvirt-style symlink autostart/<name>.xml → ../<name>.xml', async () => {
    await store.write('n', 'x');
    expect(await store.isAutostart('n')).toBe(false);
    await store.setAutostart('n', true);
    const link = join(store.dir, 'autostart', 'n.xml');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe('../n.xml');
    expect(await store.isAutostart('n')).toBe(true);
    await store.setAutostart('n', true); // idempotent
    await store.remove('n');
    expect(await store.isAutostart('n')).toBe(false);
    expect(await store.exists('n')).toBe(false);
    // The autostart directory is not a network.
    expect((await store.readAll()).files).toEqual([]);
  });

  it('refuses unsafe names and reports oversized files', async () => {
    await expect(store.write('../evil', 'x')).rejects.toThrow(/unsafe network file name/);
    await expect(store.write('.hidden', 'x')).rejects.toThrow(/unsafe/);
    await store.ensure();
    writeFileSync(join(store.dir, 'big.xml'), 'x'.repeat(1024 * 1024 + 1));
    const { files, unreadable } = await store.readAll();
    expect(files).toEqual([]);
    expect(unreadable[0]).toMatchObject({ stem: 'big', reason: expect.stringMatching(/limit/) });
  });

  it('a missing config dir is empty', async () => {
    expect(await store.readAll()).toEqual({ files: [], unreadable: [] });
  });
});
