/**
 * The config dir: the source of truth for defined networks. Each network is `<dir>/<name>.xml` (libvirt's
 * network XML, written atomically); autostart is recorded the way libvirt does it, as a symlink
 * `<dir>/autostart/<name>.xml` → `../<name>.xml`, so an admin's `ls autostart/` tells the truth and a
 * libvirt config tree can be copied in as is. Only regular `*.xml` files directly in the dir are
 * networks (editor temp files, dot files and the autostart/ subdirectory are not). Adapter (file I/O).
 */
import { constants as fsc } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';

/** Files bigger than this are not network definitions (refused before reading). */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

export interface StoredFile {
  /** File name without `.xml`. */
  stem: string;
  path: string;
  xml: string;
}

export interface UnreadableFile {
  stem: string;
  path: string;
  reason: string;
}

function code(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e
    ? String((e as { code: unknown }).code)
    : undefined;
}

/** Is `name` safe as a file name stem here? (The model's validator is stricter; this guards the fs.) */
function assertSafeStem(name: string): void {
  if (!name || name.includes('/') || name.includes('\0') || name.startsWith('.') || name.length > 255) {
    throw new Error(`unsafe network file name: ${JSON.stringify(name.slice(0, 80))}`);
  }
}

export class ConfigStore {
  readonly autostartDir: string;

  constructor(readonly dir: string) {
    this.autostartDir = join(dir, 'autostart');
  }

  fileFor(name: string): string {
    assertSafeStem(name);
    return join(this.dir, `${name}.xml`);
  }

  linkFor(name: string): string {
    assertSafeStem(name);
    return join(this.autostartDir, `${name}.xml`);
  }

  async ensure(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o755 });
  }

  /** Every `*.xml` network file, read; files that could not be read are returned separately. */
  async readAll(): Promise<{ files: StoredFile[]; unreadable: UnreadableFile[] }> {
    const files: StoredFile[] = [];
    const unreadable: UnreadableFile[] = [];
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (e) {
      if (code(e) === 'ENOENT') return { files, unreadable };
      throw e;
    }
    for (const n of names.sort()) {
      if (!n.endsWith('.xml') || n.startsWith('.')) continue;
      const stem = n.slice(0, -4);
      const path = join(this.dir, n);
      try {
        const st = await fsp.stat(path);
        if (!st.isFile()) continue;
        if (st.size > MAX_CONFIG_FILE_BYTES) {
          unreadable.push({
            stem,
            path,
            reason: `file is ${st.size} bytes (limit ${MAX_CONFIG_FILE_BYTES})`,
          });
          continue;
        }
        files.push({ stem, path, xml: await fsp.readFile(path, 'utf8') });
      } catch (e) {
        if (code(e) === 'ENOENT') continue; // removed while we listed
        unreadable.push({ stem, path, reason: e instanceof Error ? e.message : String(e) });
      }
    }
    return { files, unreadable };
  }

  async exists(name: string): Promise<boolean> {
    try {
      await fsp.access(this.fileFor(name), fsc.F_OK);
      return true;
    } catch {
      return false;
    }
  }

  /** Write `<name>.xml` atomically (temp + fsync + rename). */
  async write(name: string, xml: string): Promise<void> {
    await this.ensure();
    await writeFileAtomic(this.fileFor(name), xml, { mode: 0o644 });
  }

  /** Remove the definition and its autostart link (missing files are fine). */
  async remove(name: string): Promise<void> {
    await this.setAutostart(name, false);
    try {
      await fsp.unlink(this.fileFor(name));
    } catch (e) {
      if (code(e) !== 'ENOENT') throw e;
    }
  }

  async isAutostart(name: string): Promise<boolean> {
    try {
      await fsp.lstat(this.linkFor(name));
      return true;
    } catch (e) {
      if (code(e) === 'ENOENT') return false;
      throw e;
    }
  }

  /** Create (atomically: temp link + rename) or remove the autostart symlink. */
  async setAutostart(name: string, on: boolean): Promise<void> {
    const link = this.linkFor(name);
    if (!on) {
      try {
        await fsp.unlink(link);
      } catch (e) {
        if (code(e) !== 'ENOENT') throw e;
      }
      return;
    }
    await fsp.mkdir(this.autostartDir, { recursive: true, mode: 0o755 });
    const tmp = join(this.autostartDir, `.${name}.xml.${process.pid}.${Date.now()}.tmp`);
    await fsp.symlink(`../${name}.xml`, tmp);
    try {
      await fsp.rename(tmp, link);
    } catch (e) {
      await fsp.unlink(tmp).catch(() => {});
      throw e;
    }
  }
}
