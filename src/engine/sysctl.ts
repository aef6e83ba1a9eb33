/**
 * Host sysctls shared by networks (ip_forward, ipv6 forwarding). Each setting remembers the value it
 * had before the first network claimed it and which networks hold it; when the last holder releases
 * it, the original value is written back (libvirt leaves ip_forward=1 behind; virtnet does not).
 * The table is kept in a file of the run directory, so a new engine process restores correctly.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sysctl } from '../plan/links.js';
import { writeFileAtomic } from '../util/atomic-write.js';

/** `net.ipv6.conf.br0.100.accept_ra` → `/proc/sys/net/ipv6/conf/br0.100/accept_ra` (names may contain dots). */
export function sysctlPath(key: string, root = '/proc/sys'): string {
  const m = /^(net\.ipv[46]\.(?:conf|neigh))\.(.+)\.([a-z_0-9]+)$/.exec(key);
  if (m) return join(root, ...m[1]!.split('.'), m[2]!, m[3]!);
  return join(root, ...key.split('.'));
}

export interface SysctlIo {
  read(key: string): Promise<string>;
  write(key: string, value: string): Promise<void>;
}

export function procSysctlIo(root = '/proc/sys'): SysctlIo {
  return {
    async read(key) {
      return (await readFile(sysctlPath(key, root), 'utf8')).trim();
    },
    async write(key, value) {
      await writeFile(sysctlPath(key, root), `${value}\n`);
    },
  };
}

/** A value actually written by claim/release (for the log). */
export interface SysctlChange {
  key: string;
  value: string;
  /** The value before the write. */
  was: string;
}

interface Held {
  original: string;
  value: string;
  holders: string[];
}

export class SysctlManager {
  private table: Record<string, Held> = {};
  private loaded = false;
  /** claim/release are read-modify-write of one table: one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly io: SysctlIo,
    private readonly file: string,
  ) {}

  private async load(): Promise<void> {
    if (this.loaded) return;
    try {
      this.table = JSON.parse(await readFile(this.file, 'utf8')) as Record<string, Held>;
    } catch {
      this.table = {};
    }
    this.loaded = true;
  }

  private async save(): Promise<void> {
    await writeFileAtomic(this.file, `${JSON.stringify(this.table, null, 1)}\n`, { noSync: true });
  }

  /** Set each sysctl for `holder`, remembering the original value. Resolves with the values written. */
  claim(holder: string, settings: readonly Sysctl[]): Promise<SysctlChange[]> {
    return this.one(() => this.doClaim(holder, settings));
  }

  /** Resolves with the values written back. */
  release(holder: string): Promise<SysctlChange[]> {
    return this.one(() => this.doRelease(holder));
  }

  /**
   * `holder` now needs exactly `settings` (a live update): claims them, then lets go of what it held
   * and no longer needs — a setting it keeps is never put back in between (no forwarding blip).
   */
  replace(holder: string, settings: readonly Sysctl[]): Promise<SysctlChange[]> {
    return this.one(async () => {
      const set = await this.doClaim(holder, settings);
      const keep = new Set(settings.map((x) => x.key));
      return [...set, ...(await this.doRelease(holder, keep))];
    });
  }

  private one<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.catch(() => {}).then(fn);
    this.queue = next;
    return next;
  }

  private async doClaim(holder: string, settings: readonly Sysctl[]): Promise<SysctlChange[]> {
    await this.load();
    let changed = false;
    const writes: SysctlChange[] = [];
    try {
      for (const s of settings) {
        const h = this.table[s.key];
        if (h) {
          if (!h.holders.includes(holder)) {
            h.holders.push(holder);
            changed = true;
          }
          // Someone changed it behind our back (or a new holder wants it): make it right.
          const now = await this.io.read(s.key);
          if (now !== s.value) {
            await this.io.write(s.key, s.value);
            writes.push({ key: s.key, value: s.value, was: now });
          }
          continue;
        }
        const original = await this.io.read(s.key);
        if (original !== s.value) {
          await this.io.write(s.key, s.value);
          writes.push({ key: s.key, value: s.value, was: original });
        }
        this.table[s.key] = { original, value: s.value, holders: [holder] };
        changed = true;
      }
    } finally {
      if (changed) await this.save();
    }
    return writes;
  }

  /** Drop `holder` from every setting; a setting nobody holds any more gets its original value back. */
  private async doRelease(holder: string, keep?: ReadonlySet<string>): Promise<SysctlChange[]> {
    await this.load();
    let changed = false;
    const writes: SysctlChange[] = [];
    for (const [key, h] of Object.entries(this.table)) {
      if (!h.holders.includes(holder) || keep?.has(key)) continue;
      h.holders = h.holders.filter((x) => x !== holder);
      changed = true;
      if (h.holders.length === 0) {
        const now = await this.io.read(key).catch(() => undefined);
        // Only put it back if it is still what we set (an admin's later change wins).
        if (now === h.value && h.original !== h.value) {
          await this.io.write(key, h.original);
          writes.push({ key, value: h.original, was: now });
        }
        delete this.table[key];
      }
    }
    if (changed) await this.save();
    return writes;
  }

  async holders(key: string): Promise<string[]> {
    await this.load();
    return [...(this.table[key]?.holders ?? [])];
  }
}
