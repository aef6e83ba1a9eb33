/**
 * What virtnet did for each domain, remembered between hook calls. libvirt's XML at `stopped` and
 * `release` no longer names the taps or the runtime bridge, so everything that must be undone is
 * written down at `prepare`/`start`: one JSON file per domain under `<run dir>/hooks/domains/`,
 * replaced atomically (a reader sees the old record or the new one, never half of one). The run dir
 * is a tmpfs: records vanish with the domains at reboot.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { PortForward } from '../model/domain.js';
import { writeFileAtomic } from '../util/atomic-write.js';

export type PortKind = 'bridge' | 'ethernet' | 'network';

/** One domain interface virtnet acts on. */
export interface PortRecord {
  /** Position among the domain's `<interface>` elements. */
  index: number;
  kind: PortKind;
  /** virtnet network name (bridge/ethernet), or the libvirt network name (kind 'network'). */
  network: string;
  mac?: string;
  /** The tap, known from `start` on. */
  ifname?: string;
  /** The bridge the tap is on (a libvirt network's is known from `start` on). */
  bridge?: string;
  /** Fixed addresses (metadata), the DNAT targets of the forwards. */
  ip?: string;
  ip6?: string;
  /** DNS name given to the DHCP reservation. */
  hostname?: string;
  forwards: PortForward[];
  /** virtnet enslaved the tap itself (type='ethernet'). */
  attached?: boolean;
  /** The DHCP/DNS host entries virtnet added to the network (removed again by MAC). */
  hostAdded?: boolean;
  /**
   * Added by the network hook's `port-created` for a NIC attached to the running domain (libvirt runs
   * no qemu hook then); its `index` is -1 (not known from there).
   */
  hotplugged?: boolean;
  /**
   * Detached from the running domain (`port-deleted`): its reservation and forwards are out, its
   * settings are kept so re-attaching the same MAC gets them again.
   */
  unplugged?: boolean;
}

export interface DomainRecord {
  version: 1;
  domain: string;
  uuid?: string;
  /** prepared: addresses and ports reserved; started: taps, hosts and rules in place. */
  phase: 'prepared' | 'started';
  ports: PortRecord[];
  /** The domain's port-forward rules are installed. */
  forwardsApplied?: boolean;
  updatedAt: string;
}

/** Where records and locks live under a run dir (daemon and fallback agree on it). */
export function hookPaths(runDir: string): { records: string; locks: string } {
  return { records: join(runDir, 'hooks', 'domains'), locks: join(runDir, 'hooks', 'locks') };
}

/** The record's key: the domain's UUID when known (always, from libvirt), else its name. */
export function domainKey(d: { name: string; uuid?: string }): string {
  return d.uuid ?? `name:${d.name}`;
}

function fileFor(dir: string, key: string): string {
  // UUIDs are file-safe; names are encoded ('.' too, so no name can be '.' or '..').
  return join(dir, `${encodeURIComponent(key).replaceAll('.', '%2E')}.json`);
}

function isRecord(v: unknown): v is DomainRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<DomainRecord>;
  return r.version === 1 && typeof r.domain === 'string' && Array.isArray(r.ports);
}

export interface DomainRecordStore {
  get(key: string): Promise<DomainRecord | undefined>;
  put(record: DomainRecord): Promise<void>;
  delete(key: string): Promise<void>;
  list(): Promise<DomainRecord[]>;
}

/**
 * Records as files in one directory — under the run dir, a tmpfs: the small reads and writes use
 * synchronous calls (cheaper than the asynchronous ones' four to six thread-pool round trips per
 * file; README, Numbers), which matters for list() with many domains.
 */
export class FileRecordStore implements DomainRecordStore {
  private made = false;
  constructor(readonly dir: string) {}

  async get(key: string): Promise<DomainRecord | undefined> {
    let text: string;
    try {
      text = readFileSync(fileFor(this.dir, key), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const v: unknown = JSON.parse(text);
    return isRecord(v) ? v : undefined;
  }

  async put(record: DomainRecord): Promise<void> {
    if (!this.made) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.made = true;
    }
    await writeFileAtomic(
      fileFor(this.dir, domainKey({ name: record.domain, uuid: record.uuid })),
      `${JSON.stringify({ ...record, updatedAt: new Date().toISOString() }, null, 1)}\n`,
      // The run dir is a tmpfs and records die with the boot: atomicity matters, durability does not.
      { mode: 0o600, noSync: true },
    );
  }

  async delete(key: string): Promise<void> {
    rmSync(fileFor(this.dir, key), { force: true });
  }

  async list(): Promise<DomainRecord[]> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: DomainRecord[] = [];
    for (const n of names) {
      if (!n.endsWith('.json') || n.startsWith('.')) continue;
      try {
        const v: unknown = JSON.parse(readFileSync(join(this.dir, n), 'utf8'));
        if (isRecord(v)) out.push(v);
      } catch {
        // removed meanwhile, or not ours
      }
    }
    return out;
  }
}

/** Records in memory (tests, dry runs). */
export class MemoryRecordStore implements DomainRecordStore {
  private readonly map = new Map<string, DomainRecord>();
  async get(key: string) {
    const r = this.map.get(key);
    return r ? structuredClone(r) : undefined;
  }
  async put(record: DomainRecord) {
    this.map.set(domainKey({ name: record.domain, uuid: record.uuid }), structuredClone(record));
  }
  async delete(key: string) {
    this.map.delete(key);
  }
  async list() {
    return [...this.map.values()].map((r) => structuredClone(r));
  }
}

/**
 * The domain owning each MAC on a network, from the hook records: a port belongs to `network` when
 * its record names that network (a virtnet network, or the libvirt network of the same name that
 * virtnet publishes). Keys are lower-case MACs.
 */
export function domainsByMac(records: readonly DomainRecord[], network: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of records) {
    for (const p of r.ports) {
      if (p.network === network && p.mac) out.set(p.mac.toLowerCase(), r.domain);
    }
  }
  return out;
}
