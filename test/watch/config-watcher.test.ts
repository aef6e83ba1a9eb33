import { mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigWatcher } from '../../src/watch/config-watcher.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ConfigWatcher (real temp dir)', () => {
  let dir: string;
  let w: ConfigWatcher;
  let seen: string[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vh8-watch-'));
    writeFileSync(join(dir, 'existing.xml'), '<network/>');
    w = new ConfigWatcher({ dir, debounceMs: 40 });
    seen = [];
    w.on('change', (c) => seen.push(c.name));
    await w.start();
  });
  afterEach(async () => {
    await w.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const waitFor = async (pred: () => boolean, ms = 3000) => {
    const end = Date.now() + ms;
    while (!pred() && Date.now() < end) await sleep(10);
  };

  it('does not report files present at start', async () => {
    await sleep(150);
    expect(seen).toEqual([]);
  });

  it('reports add, change and unlink of a definition', async () => {
    writeFileSync(join(dir, 'a.xml'), '1');
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual(['a']);
    writeFileSync(join(dir, 'existing.xml'), '2');
    await waitFor(() => seen.length === 2);
    expect(seen[1]).toBe('existing');
    unlinkSync(join(dir, 'a.xml'));
    await waitFor(() => seen.length === 3);
    expect(seen[2]).toBe('a');
  });

  it('debounces a burst of writes to one report', async () => {
    for (let i = 0; i < 20; i++) writeFileSync(join(dir, 'burst.xml'), `v${i}`);
    await sleep(300);
    expect(seen).toEqual(['burst']);
  });

  it('an atomic save (temp + rename, as libvirt does with .new) is one report; temp files are ignored', async () => {
    writeFileSync(join(dir, 'existing.xml.new'), 'x');
    writeFileSync(join(dir, '.existing.xml.swp'), 'x');
    writeFileSync(join(dir, 'existing.xml~'), 'x');
    renameSync(join(dir, 'existing.xml.new'), join(dir, 'existing.xml'));
    await sleep(300);
    expect(seen).toEqual(['existing']);
  });

  it('ignores files that are not definitions', async () => {
    writeFileSync(join(dir, 'notes.txt'), 'x');
    writeFileSync(join(dir, '.hidden.xml'), 'x');
    writeFileSync(join(dir, '#x.xml#'), 'x');
    await sleep(250);
    expect(seen).toEqual([]);
  });

  it('a second change shortly after a read of the file is still reported', async () => {
    // chokidar's own 'change' is lost here (atime/mtime check); the raw events are not.
    for (let i = 0; i < 3; i++) {
      const before = seen.length;
      writeFileSync(join(dir, 'existing.xml'), `a${i}`);
      await waitFor(() => seen.length === before + 1);
      readFileSync(join(dir, 'existing.xml'));
      await sleep(15);
      writeFileSync(join(dir, 'existing.xml'), `b${i}`);
      await waitFor(() => seen.length === before + 2);
      expect(seen.length).toBe(before + 2);
    }
  });

  it('reports different names independently', async () => {
    writeFileSync(join(dir, 'n1.xml'), '1');
    writeFileSync(join(dir, 'n2.xml'), '1');
    await waitFor(() => seen.length === 2);
    expect(seen.sort()).toEqual(['n1', 'n2']);
  });
});
