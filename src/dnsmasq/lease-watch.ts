/**
 * Lease changes from dnsmasq's lease file, for when its D-Bus signals are not available: the file's
 * directory is watched (inotify), the file re-read after each change (debounced) and compared with the
 * previous snapshot (added / updated = renewed or renamed / deleted).
 */
import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { type DnsmasqLease, diffLeases, type LeaseChange, readLeaseFile } from './leases.js';

export interface LeaseFileWatcherEvents {
  'lease-changed': [LeaseChange];
  error: [Error];
}

export class LeaseFileWatcher extends EventEmitter<LeaseFileWatcherEvents> {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private snapshot: DnsmasqLease[] = [];
  private reading: Promise<void> = Promise.resolve();

  constructor(
    readonly leaseFile: string,
    private readonly debounceMs = 20,
  ) {
    super();
  }

  /** The leases as last read. */
  get leases(): DnsmasqLease[] {
    return this.snapshot;
  }

  /** Read the current file (no events for what is already there) and start watching. */
  async start(): Promise<void> {
    if (this.watcher) return;
    this.snapshot = await readLeaseFile(this.leaseFile);
    const name = basename(this.leaseFile);
    this.watcher = watch(dirname(this.leaseFile), { persistent: false }, (_type, file) => {
      if (file === null || file === name) this.schedule();
    });
    this.watcher.on('error', (e) => this.emit('error', e));
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Re-read now and emit what changed (also used by the watcher). */
  refresh(): Promise<void> {
    this.reading = this.reading.then(async () => {
      try {
        const next = await readLeaseFile(this.leaseFile);
        const changes = diffLeases(this.snapshot, next);
        this.snapshot = next;
        for (const c of changes) this.emit('lease-changed', c);
      } catch (e) {
        this.emit('error', e instanceof Error ? e : new Error(String(e)));
      }
    });
    return this.reading;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh(); // never rejects: a failed read is an 'error' event
    }, this.debounceMs);
  }
}
