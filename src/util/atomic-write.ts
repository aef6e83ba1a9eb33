/**
 * Atomic file replacement: write a temp file in the same directory, fsync it, rename it over the
 * target, fsync the directory. A reader sees either the old file or the new one, never a mix; on any
 * failure the temp file is removed and the old file is left as it was.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The slice of `node:fs/promises` this module uses (injectable for tests). */
export interface AtomicWriteFs {
  open: typeof fsp.open;
  rename: typeof fsp.rename;
  unlink: typeof fsp.unlink;
  stat: typeof fsp.stat;
}

export interface AtomicWriteOptions {
  /** File mode of the new file. Default: the mode of the file being replaced, else 0o644. */
  mode?: number;
  /** Skip the directory fsync (faster; the rename is still atomic but may not survive power loss). */
  noDirSync?: boolean;
  /**
   * Skip fsync of the file too (and of the directory): still atomic for readers (temp + rename), not
   * durable. For files under a run directory (/run), which a reboot discards anyway.
   */
  noSync?: boolean;
  /** For tests: a replacement for `node:fs/promises`. */
  fs?: AtomicWriteFs;
}

let counter = 0;

/** A unique temp name beside `path` (hidden, same directory so rename stays on one filesystem). */
export function tempPathFor(path: string): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  const rnd = randomBytes(4).toString('hex');
  return join(dirname(path), `.${basename(path)}.${process.pid}.${counter}.${rnd}.tmp`);
}

function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e
    ? String((e as { code: unknown }).code)
    : undefined;
}

async function currentMode(afs: AtomicWriteFs, path: string): Promise<number | undefined> {
  try {
    return (await afs.stat(path)).mode & 0o7777;
  } catch (e) {
    if (errCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** Replace `path` with `data` atomically. Throws the underlying fs error (with its code) on failure. */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  if (opts.noSync && !opts.fs) {
    // Not durable anyway (files under /run, a tmpfs): synchronous calls cost a fraction of the
    // asynchronous path's six thread-pool round trips (README, Numbers). The event loop is held only
    // for that long; the guarantees are the same.
    writeFileAtomicSync(path, data, opts);
    return;
  }
  const afs = opts.fs ?? fsp;
  const mode = opts.mode ?? (await currentMode(afs, path)) ?? 0o644;
  const tmp = tempPathFor(path);
  let created = false;
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await afs.open(tmp, 'wx', mode);
    created = true;
    await fh.writeFile(data);
    // open()'s mode is filtered by the umask; set the exact mode asked for.
    await fh.chmod(mode);
    if (!opts.noSync) await fh.sync();
    await fh.close();
    fh = undefined;
    await afs.rename(tmp, path);
    created = false;
  } catch (e) {
    if (fh) await fh.close().catch(() => {});
    if (created) await afs.unlink(tmp).catch(() => {});
    throw e;
  }
  if (!opts.noDirSync && !opts.noSync) await syncDir(afs, dirname(path));
}

/** fsync a directory so a rename in it is durable. Filesystems that cannot are tolerated. */
async function syncDir(afs: AtomicWriteFs, dir: string): Promise<void> {
  let dh: fsp.FileHandle | undefined;
  try {
    dh = await afs.open(dir, 'r');
    await dh.sync();
  } catch (e) {
    const code = errCode(e);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM') throw e;
  } finally {
    await dh?.close().catch(() => {});
  }
}

/** Synchronous variant (for exit paths and files under /run); same guarantees, same options. */
export function writeFileAtomicSync(
  path: string,
  data: string | Uint8Array,
  opts: Omit<AtomicWriteOptions, 'fs'> = {},
): void {
  let mode = opts.mode;
  if (mode === undefined) {
    try {
      mode = fs.statSync(path).mode & 0o7777;
    } catch (e) {
      if (errCode(e) !== 'ENOENT') throw e;
      mode = 0o644;
    }
  }
  const tmp = tempPathFor(path);
  let fd: number | undefined;
  let created = false;
  try {
    fd = fs.openSync(tmp, 'wx', mode);
    created = true;
    fs.writeFileSync(fd, data);
    fs.fchmodSync(fd, mode);
    if (!opts.noSync) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, path);
    created = false;
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {}
    }
    if (created) {
      try {
        fs.unlinkSync(tmp);
      } catch {}
    }
    throw e;
  }
  if (opts.noDirSync || opts.noSync) return;
  let dfd: number | undefined;
  try {
    dfd = fs.openSync(dirname(path), 'r');
    fs.fsyncSync(dfd);
  } catch (e) {
    const code = errCode(e);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM') throw e;
  } finally {
    if (dfd !== undefined) fs.closeSync(dfd);
  }
}
