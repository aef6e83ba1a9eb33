/**
 * The ports unit: guests' taps put on a network's bridge and taken off it (one `ip link set` each,
 * from the LinkOp). Reports the changes it made into `changes`; the sequencer logs them.
 */
import type { CommandRunner } from '../../exec/runner.js';
import { ipArgv } from '../../plan/links.js';
import type { Change } from './change.js';

export interface PortOptions {
  tolerant?: boolean;
  meta?: Record<string, unknown>;
  step?: string;
}

export class PortsUnit {
  constructor(private readonly runner: CommandRunner) {}

  /**
   * `ifname` onto `bridge`, up. `tolerant`: a port that cannot be attached (gone with its guest) is
   * skipped instead of failing. Returns whether it was attached.
   */
  attach(bridge: string, ifname: string, changes: Change[], opts: PortOptions = {}): Promise<boolean> {
    return this.set(bridge, ifname, true, changes, opts);
  }

  /** `ifname` off `bridge`. `tolerant` as for attach. */
  detach(bridge: string, ifname: string, changes: Change[], opts: PortOptions = {}): Promise<boolean> {
    return this.set(bridge, ifname, false, changes, opts);
  }

  private async set(
    bridge: string,
    ifname: string,
    on: boolean,
    changes: Change[],
    opts: PortOptions,
  ): Promise<boolean> {
    const r = await this.runner.run({
      step:
        opts.step ?? (on ? `ports: attach ${ifname} to ${bridge}` : `ports: detach ${ifname} from ${bridge}`),
      argv: ipArgv(
        on
          ? { kind: 'link-set', name: ifname, master: bridge, up: true }
          : { kind: 'link-set', name: ifname, master: null },
      ),
      ...(opts.tolerant ? { allowFail: true } : {}),
    });
    if (r.exitCode !== 0) return false;
    changes.push({
      message: on ? `port ${ifname} attached to ${bridge}` : `port ${ifname} detached from ${bridge}`,
      ...(opts.meta ? { meta: opts.meta } : {}),
    });
    return true;
  }
}
