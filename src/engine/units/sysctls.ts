/**
 * The sysctls unit: a network's host-wide sysctls (claimed, shared with the other networks, put back
 * once none needs them: SysctlManager) and its bridge's own. Every method reports the changes it made
 * into `changes` (also those made before a failure); the sequencer logs them.
 */
import type { Sysctl } from '../../plan/links.js';
import type { SysctlChange, SysctlIo, SysctlManager } from '../sysctl.js';
import { type Change, stepError } from './change.js';

const described = (changes: readonly SysctlChange[], restored: boolean): Change[] =>
  changes.map((c) => ({
    message: `sysctl ${c.key} ${restored ? 'restored to' : 'set to'} ${c.value} (was ${c.was})`,
  }));

export class SysctlsUnit {
  constructor(
    private readonly manager: SysctlManager,
    private readonly io: SysctlIo,
  ) {}

  /** up and adopt: the plan's host sysctls claimed for `name`. */
  async up(name: string, host: readonly Sysctl[], changes: Change[]): Promise<void> {
    changes.push(...described(await this.manager.claim(name, host), false));
  }

  /** down: what only `name` needed goes back to its previous value. */
  async down(name: string, changes: Change[]): Promise<void> {
    changes.push(...described(await this.manager.release(name), true));
  }

  /** update: claim what the new plan needs, release what only the old one did. */
  async update(name: string, host: readonly Sysctl[], changes: Change[]): Promise<void> {
    for (const c of await this.manager.replace(name, host))
      changes.push(...described([c], !host.some((x) => x.key === c.key)));
  }

  /**
   * The bridge's own sysctls (they vanish with the bridge). `onlyChanged`: read first and write only
   * what differs. A failure names the step and the setting.
   */
  async bridge(
    step: string,
    settings: readonly Sysctl[],
    changes: Change[],
    onlyChanged = false,
  ): Promise<void> {
    for (const s of settings) {
      try {
        const was = onlyChanged ? await this.io.read(s.key).catch(() => undefined) : undefined;
        if (onlyChanged && was === s.value) continue;
        await this.io.write(s.key, s.value);
        changes.push({
          message: `sysctl ${s.key} set to ${s.value}${was !== undefined ? ` (was ${was})` : ''}`,
        });
      } catch (e) {
        throw stepError(`${step}: ${s.key}=${s.value}`, e);
      }
    }
  }
}
