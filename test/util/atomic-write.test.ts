import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AtomicWriteFs,
  tempPathFor,
  writeFileAtomic,
  writeFileAtomicSync,
} from '../../src/util/atomic-write.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'atomic-write-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const entries = () => fs.readdirSync(dir).sort();

/** A fs whose file handles fail writeFile with ENOSPC after the temp file was created. */
function enospcFs(): AtomicWriteFs & { opened: string[] } {
  const opened: string[] = [];
  return {
    opened,
    stat: fsp.stat,
    rename: fsp.rename,
    unlink: fsp.unlink,
    open: (async (p: string, flags?: string, mode?: number) => {
      const fh = await fsp.open(p, flags, mode);
      if (flags === 'wx') {
        opened.push(p);
        fh.writeFile = async () => {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        };
      }
      return fh;
    }) as AtomicWriteFs['open'],
  };
}

describe('writeFileAtomic', () => {
  it('creates a new file with the content and mode asked for', async () => {
    const p = join(dir, 'a.conf');
    await writeFileAtomic(p, 'hello\n', { mode: 0o600 });
    expect(fs.readFileSync(p, 'utf8')).toBe('hello\n');
    expect(fs.statSync(p).mode & 0o777).toBe(0o600);
    expect(entries()).toEqual(['a.conf']);
  });

  it('replaces an existing file and keeps its mode when none is given', async () => {
    const p = join(dir, 'hosts');
    fs.writeFileSync(p, 'old');
    fs.chmodSync(p, 0o640);
    const inoBefore = fs.statSync(p).ino;
    await writeFileAtomic(p, Buffer.from('new'));
    expect(fs.readFileSync(p, 'utf8')).toBe('new');
    expect(fs.statSync(p).mode & 0o777).toBe(0o640);
    // a new inode: the old file was replaced by rename, not truncated in place
    expect(fs.statSync(p).ino).not.toBe(inoBefore);
    expect(entries()).toEqual(['hosts']);
  });

  it('defaults to 0644 for a new file regardless of the umask', async () => {
    const old = process.umask(0o077);
    try {
      const p = join(dir, 'b');
      await writeFileAtomic(p, 'x');
      expect(fs.statSync(p).mode & 0o777).toBe(0o644);
    } finally {
      process.umask(old);
    }
  });

  it('leaves the old file intact and removes the temp file when the write fails (ENOSPC)', async () => {
    const p = join(dir, 'state.json');
    fs.writeFileSync(p, '{"old":true}');
    const mock = enospcFs();
    await expect(writeFileAtomic(p, '{"new":true}', { fs: mock })).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(mock.opened).toHaveLength(1);
    expect(fs.existsSync(mock.opened[0]!)).toBe(false);
    expect(fs.readFileSync(p, 'utf8')).toBe('{"old":true}');
    expect(entries()).toEqual(['state.json']);
  });

  it('noSync (files under /run): same result and cleanup, done synchronously before the promise', async () => {
    const p = join(dir, 'live.json');
    fs.writeFileSync(p, 'old');
    fs.chmodSync(p, 0o600);
    const done = writeFileAtomic(p, 'new', { noSync: true });
    expect(fs.readFileSync(p, 'utf8')).toBe('new'); // already written: no await in between
    await done;
    expect(fs.statSync(p).mode & 0o777).toBe(0o600);
    expect(entries()).toEqual(['live.json']);
    const target = join(dir, 'target');
    fs.mkdirSync(target);
    fs.writeFileSync(join(target, 'inside'), 'keep');
    await expect(writeFileAtomic(target, 'data', { noSync: true })).rejects.toMatchObject({
      code: expect.stringMatching(/EISDIR|ENOTEMPTY|EEXIST/),
    });
    expect(entries()).toEqual(['live.json', 'target']);
  });

  it('removes the temp file when the rename fails (target is a non-empty directory)', async () => {
    const p = join(dir, 'target');
    fs.mkdirSync(p);
    fs.writeFileSync(join(p, 'inside'), 'keep');
    await expect(writeFileAtomic(p, 'data')).rejects.toMatchObject({
      code: expect.stringMatching(/EISDIR|ENOTEMPTY|EEXIST/),
    });
    expect(entries()).toEqual(['target']);
    expect(fs.readFileSync(join(p, 'inside'), 'utf8')).toBe('keep');
  });

  it('fails without leaving anything when the directory does not exist', async () => {
    await expect(writeFileAtomic(join(dir, 'nope', 'f'), 'x')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(entries()).toEqual([]);
  });

  it('removes the temp file when rename fails in an injected fs', async () => {
    const p = join(dir, 'c');
    fs.writeFileSync(p, 'old');
    const mock: AtomicWriteFs = {
      ...fsp,
      rename: async () => {
        throw Object.assign(new Error('EXDEV'), { code: 'EXDEV' });
      },
    };
    await expect(writeFileAtomic(p, 'new', { fs: mock })).rejects.toMatchObject({ code: 'EXDEV' });
    expect(fs.readFileSync(p, 'utf8')).toBe('old');
    expect(entries()).toEqual(['c']);
  });

  it('concurrent writers each use a unique temp file; the result is one whole version', async () => {
    const p = join(dir, 'race');
    const versions = Array.from({ length: 20 }, (_, i) => `version-${i}-`.repeat(1000));
    await Promise.all(versions.map((v) => writeFileAtomic(p, v)));
    expect(versions).toContain(fs.readFileSync(p, 'utf8'));
    expect(entries()).toEqual(['race']);
  });

  it('temp names are in the same directory and unique', () => {
    const a = tempPathFor('/x/y/file');
    const b = tempPathFor('/x/y/file');
    expect(a.startsWith('/x/y/.file.')).toBe(true);
    expect(a).not.toBe(b);
  });

  it('a reader never sees a partial file', async () => {
    const p = join(dir, 'big');
    const A = 'A'.repeat(1 << 20);
    const B = 'B'.repeat(1 << 20);
    await writeFileAtomic(p, A);
    let stop = false;
    const seen = new Set<string>();
    const reader = (async () => {
      while (!stop) {
        const s = await fsp.readFile(p, 'utf8');
        seen.add(s === A ? 'A' : s === B ? 'B' : `partial:${s.length}`);
      }
    })();
    for (let i = 0; i < 10; i++) await writeFileAtomic(p, i % 2 ? A : B, { noDirSync: true });
    stop = true;
    await reader;
    expect([...seen].filter((s) => s.startsWith('partial'))).toEqual([]);
  });
});

describe('writeFileAtomicSync', () => {
  it('writes and replaces atomically, with mode', () => {
    const p = join(dir, 's');
    writeFileAtomicSync(p, 'one', { mode: 0o600 });
    writeFileAtomicSync(p, 'two');
    expect(fs.readFileSync(p, 'utf8')).toBe('two');
    expect(fs.statSync(p).mode & 0o777).toBe(0o600);
    expect(entries()).toEqual(['s']);
  });

  it('removes the temp file on failure and keeps the target', () => {
    const p = join(dir, 'd');
    fs.mkdirSync(p);
    fs.writeFileSync(join(p, 'f'), '');
    expect(() => writeFileAtomicSync(p, 'x')).toThrow();
    expect(entries()).toEqual(['d']);
  });

  it('works on a read-only-for-others file in a directory we own (sanity: stat via shell agrees)', () => {
    const p = join(dir, 'm');
    writeFileAtomicSync(p, 'z', { mode: 0o444 });
    expect(execFileSync('stat', ['-c', '%a', p], { encoding: 'utf8' }).trim()).toBe('444');
  });
});
