/**
 * Watches the config dir (chokidar 5) and reports, per network name, that its file may have changed:
 * added, changed, removed or replaced — the reconciler then reads the file and decides. Events of one
 * name are debounced (a burst of writes, an editor's save-as-temp-then-rename, libvirt's
 * `.new` + rename, all end as one report); names are independent. Files that are not definitions
 * (config-files.ts) never get here.
 */
import { EventEmitter } from 'node:events';
import { basename, resolve } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { networkNameOfFile } from '../config/files.js';

export interface ConfigWatcherOptions {
  /** The config dir (e.g. /etc/virtnet/networks). */
  dir: string;
  /** Quiet time after the last event of a name before it is reported (default 60 ms). */
  debounceMs?: number;
  /** Poll instead of inotify (network filesystems). */
  usePolling?: boolean;
}

export interface ConfigWatcherEvents {
  /** The file of network `name` (at `path`) was added, changed or removed: re-read it. */
  change: [{ name: string; path: string }];
  error: [Error];
}

export class ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  readonly dir: string;
  private readonly debounceMs: number;
  private readonly usePolling: boolean;
  private watcher: FSWatcher | undefined;
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(opts: ConfigWatcherOptions) {
    super();
    this.dir = resolve(opts.dir);
    this.debounceMs = opts.debounceMs ?? 60;
    this.usePolling = opts.usePolling ?? false;
  }

  /** Start watching; resolves once chokidar is ready (existing files are NOT reported). */
  async start(): Promise<void> {
    if (this.watcher) return;
    const dir = this.dir;
    const w = watch(dir, {
      ignoreInitial: true,
      depth: 0,
      usePolling: this.usePolling,
      interval: 100,
      // Our own debounce handles atomic saves; keep chokidar's raw add/unlink.
      atomic: false,
      ignored: (path: string, stats) => {
        if (resolve(path) === dir) return false;
        if (stats?.isDirectory()) return true;
        return networkNameOfFile(path) === undefined;
      },
    });
    this.watcher = w;
    for (const ev of ['add', 'change', 'unlink'] as const) w.on(ev, (p: string) => this.touch(p));
    // chokidar drops a 'change' that follows a read of the file closely (its atime/mtime check):
    // the raw inotify events are reliable, and every report is re-read and compared anyway.
    w.on('raw', (_ev: string, p: unknown) => {
      if (typeof p === 'string' && p) this.touch(resolve(dir, basename(p)));
    });
    w.on('error', (e: unknown) => this.emit('error', e instanceof Error ? e : new Error(String(e))));
    await new Promise<void>((res) => w.once('ready', () => res()));
  }

  private touch(path: string): void {
    const name = networkNameOfFile(path);
    if (name === undefined) return;
    const full = resolve(this.dir, path);
    clearTimeout(this.timers.get(name));
    this.timers.set(
      name,
      setTimeout(() => {
        this.timers.delete(name);
        this.emit('change', { name, path: full });
      }, this.debounceMs),
    );
  }

  async close(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await w.close();
  }
}
