/**
 * The firewall unit: a network's own rules — the plan's scripts for one backend, applied and removed
 * in one transaction each by the driver (src/firewall) — up / down /
 * adopt (repaired when not all there) / update (diffPlans' firewall step). Reports the changes it
 * made into `changes`; the sequencer logs them. The coexistence layer and firewalld zones are not
 * part of the plan and stay with the engine.
 */
import type { Firewall } from '../../firewall/types.js';
import type { UpdateStep } from '../../plan/diff.js';
import type { FirewallScripts } from '../../plan/firewall/scripts.js';
import type { Logger } from '../../util/log.js';
import type { Change } from './change.js';

export class FirewallUnit {
  constructor(private readonly log?: Logger) {}

  /** up: the rules applied (the sequencer registers the removal as its undo first). */
  async up(name: string, fw: Firewall, scripts: FirewallScripts, changes: Change[]): Promise<void> {
    await fw.apply(name, scripts);
    changes.push({ message: `firewall rules applied (${scripts.backend})` });
  }

  async down(name: string, fw: Firewall, scripts: FirewallScripts, changes: Change[]): Promise<void> {
    await fw.remove(name, scripts);
    changes.push({ message: `firewall rules removed (${scripts.backend})` });
  }

  /**
   * adopt: nftables re-applied in one transaction (a rule missing inside a table is repaired too);
   * iptables: every rule checked with -C, re-applied only when something is missing.
   */
  async adopt(name: string, fw: Firewall, scripts: FirewallScripts): Promise<void> {
    const found = await fw.repair(name, scripts);
    if (found !== 'present') this.log?.warning(`network ${name}: firewall rules were ${found}; repaired`);
  }

  /** update: the old rules out (unless the new apply replaces them atomically), the new ones in. */
  async update(
    name: string,
    step: Extract<UpdateStep, { kind: 'firewall' }>,
    fws: { old: Firewall; next: Firewall },
    changes: Change[],
  ): Promise<void> {
    if (step.remove) await this.down(name, fws.old, step.remove, changes);
    if (step.apply) {
      await fws.next.apply(name, step.apply);
      changes.push({
        message: `firewall rules ${step.atomic ? 'replaced' : 'applied'} (${step.apply.backend})`,
      });
    }
  }
}
