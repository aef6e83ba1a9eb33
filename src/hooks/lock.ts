/**
 * Serialization of hook events: named locks that hold both inside one process (a promise queue per
 * key) and across processes (a symlink per key whose target is the owner's pid: symlink() is atomic
 * and fails when the name exists, so taking a lock is one syscall and releasing it one unlink). The daemon
 * and the in-process fallback (one process per hook call when no daemon answers) use the same locks,
 * so 50 domains starting at once on one network are handled one after the other, whoever handles them.
 *
 * Several keys are always taken in sorted order (no deadlock). A lock whose owner process
 * is gone is broken (stale after a crash). Waiting is bounded: past `timeoutMs` the call fails with a
 * clear message instead of hanging libvirt.
 */
import { mkdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { readFile, readlink, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface LockOptions {
  /** Directory for the cross-process lock directories; undefined = in-process only. */
  dir?: string;
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
}

export class LockTimeoutError extends Error {
  override readonly name = 'LockTimeoutError';
}

/** File-safe encoding of a lock key. */
function lockName(key: string): string {
  return `${encodeURIComponent(key).replaceAll('.', '%2E')}.lock`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LockManager {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly dir: string | undefined;
  private readonly timeoutMs: number;
  private dirMade = false;

  constructor(opts: LockOptions = {}) {
    this.dir = opts.dir;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** Run `fn` holding every key (duplicates removed, taken in sorted order). */
  async withLocks<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const deadline = Date.now() + this.timeoutMs;
    const releases: Array<() => Promise<void>> = [];
    try {
      for (const k of sorted) releases.push(await this.acquire(k, deadline));
      return await fn();
    } finally {
      for (const r of releases.reverse()) await r();
    }
  }

  private async acquire(key: string, deadline: number): Promise<() => Promise<void>> {
    // In-process: chain on the previous holder.
    const prev = this.tails.get(key) ?? Promise.resolve();
    let releaseLocal!: () => void;
    const mine = new Promise<void>((r) => {
      releaseLocal = r;
    });
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    const waited = await Promise.race([
      prev.then(() => true),
      sleep(Math.max(0, deadline - Date.now())).then(() => false),
    ]);
    if (!waited) {
      // Let later waiters through once the previous holder is done; we give up.
      void prev.then(releaseLocal); // tails never reject: each is a chain of release promises
      throw new LockTimeoutError(`timed out after ${this.timeoutMs} ms waiting for lock '${key}'`);
    }
    const cleanupLocal = () => {
      releaseLocal();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
    if (!this.dir) return async () => cleanupLocal();
    try {
      const path = await this.acquireFile(key, deadline);
      return async () => {
        try {
          unlinkSync(path);
        } catch {}
        cleanupLocal();
      };
    } catch (e) {
      cleanupLocal();
      throw e;
    }
  }

  private async acquireFile(key: string, deadline: number): Promise<string> {
    const dir = this.dir!;
    if (!this.dirMade) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.dirMade = true;
    }
    const path = join(dir, lockName(key));
    let delay = 1;
    for (;;) {
      try {
        // One atomic syscall makes the lock and names its owner: a symlink whose target is our pid.
        // (Synchronous: the lock dir is under /run, and this is one syscall, not a thread-pool trip.)
        symlinkSync(String(process.pid), path);
        return path;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          // The lock directory was removed behind our back: make it again.
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          continue;
        }
        if (code !== 'EEXIST') throw e;
      }
      if (await this.isStale(path)) {
        await rm(path, { recursive: true, force: true });
        continue;
      }
      if (Date.now() >= deadline)
        throw new LockTimeoutError(
          `timed out after ${this.timeoutMs} ms waiting for lock '${key}' (held via ${path})`,
        );
      await sleep(delay);
      delay = Math.min(delay * 2, 20);
    }
  }

  /**
   * The owner process is gone. (A lock directory with an `owner` file, as earlier versions made,
   * counts too: stale when its owner is gone or the file never appeared within 2 s.)
   */
  private async isStale(path: string): Promise<boolean> {
    let owner: string;
    try {
      owner = await readlink(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return false; // gone already: the next attempt will tell
      if (code !== 'EINVAL') throw e;
      return this.isStaleDir(path);
    }
    const pid = Number.parseInt(owner, 10);
    return !(Number.isInteger(pid) && pid > 0 && alive(pid));
  }

  private async isStaleDir(path: string): Promise<boolean> {
    try {
      const pid = Number.parseInt(await readFile(join(path, 'owner'), 'utf8'), 10);
      if (Number.isInteger(pid) && pid > 0) return !alive(pid);
    } catch {
      // no owner file (yet)
    }
    try {
      const st = await stat(path);
      return Date.now() - st.mtimeMs > 2000;
    } catch {
      return false; // gone already: the next mkdir will tell
    }
  }
}
