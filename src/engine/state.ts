/**
 * What the engine records about each active network, one JSON file per network under
 * RUNDIR/networks/NAME.json, written atomically. A new engine process reads these to adopt the
 * networks that are up (their dnsmasq by pid file, their rules by table/chain).
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ZoneBinding } from '../firewall/firewalld.js';
import type { Network } from '../model/network.js';
import type { FirewallBackend, HostEntry } from '../model/values.js';
import type { FirewallScripts } from '../plan/firewall/scripts.js';
import type { NicState } from '../plan/links.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { SpanState } from './span.js';

export interface NetworkState {
  version: 1;
  network: Network;
  bridge: string;
  /** The bridge (and -nic tap) was created by virtnet (removed on stop). */
  createdBridge: boolean;
  macTap: boolean;
  /** Bridge mode with enslave: the NIC as it was before (put back on stop). */
  enslaved?: NicState;
  firewall: FirewallBackend | 'none';
  /** The scripts applied (their remove half is what stop runs). */
  firewallScripts?: FirewallScripts;
  /** The firewalld zone of the bridge, as found or set at start (unset again at stop when ours). */
  zone?: ZoneBinding;
  dnsmasq: boolean;
  ports: string[];
  extraHosts: HostEntry[];
  startedAt: string;
  /**
   * 'starting' is recorded before the first change: a process that dies mid-start leaves it behind,
   * and the next engine then removes whatever that start had done. 'active' once start finished.
   */
  phase?: 'starting' | 'active';
  /** A spanning network: this host's role and its VXLAN port (removed on stop). */
  span?: SpanState;
}

export class StateStore {
  readonly dir: string;
  constructor(runDir: string) {
    this.dir = join(runDir, 'networks');
  }

  path(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
  }

  /** The part that changes with live edits (hosts, ports), kept apart so an edit rewrites only it. */
  livePath(name: string): string {
    return join(this.dir, `${name}.live`);
  }

  /** Both files. Run-directory files are atomic (temp + rename) but not fsynced: /run does not survive a reboot. */
  async save(s: NetworkState): Promise<void> {
    const { extraHosts: _h, ports: _p, ...rest } = s;
    await this.saveLive(s);
    await writeFileAtomic(this.path(s.network.name), `${JSON.stringify(rest)}\n`, {
      mode: 0o600,
      noSync: true,
    });
  }

  async saveLive(s: Pick<NetworkState, 'network' | 'extraHosts' | 'ports'>): Promise<void> {
    const text = `${JSON.stringify({ extraHosts: s.extraHosts, ports: s.ports })}\n`;
    await writeFileAtomic(this.livePath(s.network.name), text, { mode: 0o600, noSync: true });
  }

  async remove(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
    await rm(this.livePath(name), { force: true });
  }

  async loadAll(): Promise<NetworkState[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: NetworkState[] = [];
    for (const f of names) {
      if (!f.endsWith('.json') || f.startsWith('.')) continue;
      try {
        const s = JSON.parse(await readFile(join(this.dir, f), 'utf8')) as NetworkState;
        if (s.version !== 1 || !s.network?.name) continue;
        const live = await readFile(this.livePath(s.network.name), 'utf8').then(
          (t) => JSON.parse(t) as Pick<NetworkState, 'extraHosts' | 'ports'>,
          () => ({ extraHosts: [], ports: [] }),
        );
        out.push({ ...s, extraHosts: live.extraHosts ?? [], ports: live.ports ?? [] });
      } catch {
        // A torn file cannot happen (atomic writes); anything unreadable is not ours to adopt.
      }
    }
    return out;
  }
}
