import { spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LockManager, LockTimeoutError } from '../../src/hooks/lock.js';

/** A pid that is certainly not running: a child that has exited and been reaped. */
function deadPid(): number {
  return spawnSync('true').pid!;
}

describe('LockManager (cross-process locks)', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('holds a lock as a symlink naming our pid, and removes it afterwards', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vh12-lock-'));
    const locks = new LockManager({ dir: join(dir, 'locks') });
    const path = join(dir, 'locks', 'net%3Aa.lock');
    await locks.withLocks(['net:a'], async () => {
      expect(lstatSync(path).isSymbolicLink()).toBe(true);
      expect(readlinkSync(path)).toBe(String(process.pid));
    });
    expect(existsSync(path)).toBe(false);
  });

  it('waits for a lock held by a live process, then times out with a clear error', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vh12-lock-'));
    mkdirSync(join(dir, 'locks'));
    symlinkSync(String(process.ppid), join(dir, 'locks', 'net%3Ab.lock'));
    const locks = new LockManager({ dir: join(dir, 'locks'), timeoutMs: 150 });
    let ran = false;
    await expect(
      locks.withLocks(['net:b'], async () => {
        ran = true;
      }),
    ).rejects.toThrow(LockTimeoutError);
    expect(ran).toBe(false);
  });

  it('breaks a lock whose owner is gone, in the current form and as an old lock directory', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vh12-lock-'));
    const ld = join(dir, 'locks');
    mkdirSync(ld);
    const dead = deadPid();
    symlinkSync(String(dead), join(ld, 'a.lock'));
    mkdirSync(join(ld, 'b.lock'));
    writeFileSync(join(ld, 'b.lock', 'owner'), `${dead}\n`);
    const locks = new LockManager({ dir: ld, timeoutMs: 2000 });
    const got: string[] = [];
    await locks.withLocks(['a', 'b'], async () => {
      got.push(readlinkSync(join(ld, 'a.lock')), readlinkSync(join(ld, 'b.lock')));
    });
    expect(got).toEqual([String(process.pid), String(process.pid)]);
    expect(existsSync(join(ld, 'a.lock'))).toBe(false);
    expect(existsSync(join(ld, 'b.lock'))).toBe(false);
  });

  it('serializes holders of the same key across two managers (two processes share the directory)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vh12-lock-'));
    const a = new LockManager({ dir: join(dir, 'locks') });
    const b = new LockManager({ dir: join(dir, 'locks') });
    let inside = 0;
    let max = 0;
    const work = (m: LockManager) =>
      m.withLocks(['k'], async () => {
        inside++;
        max = Math.max(max, inside);
        await new Promise((r) => setTimeout(r, 5));
        inside--;
      });
    await Promise.all(Array.from({ length: 10 }, (_, i) => work(i % 2 ? a : b)));
    expect(max).toBe(1);
  });
});
