/**
 * The firewall as the engine sees it: one interface, two drivers (nftables, iptables). A driver takes
 * the rendered scripts of one network (from the firewall planner, src/plan/firewall) and applies or
 * removes them in ONE transaction per family — never rule by rule.
 *
 * Contract for the scripts (the planner's side):
 * - `apply` adds everything the network needs; `remove` deletes exactly that and succeeds when
 *   everything `apply` added is present.
 * - Re-applying is done as `remove` + `apply` in one transaction (nft) or back to back per family
 *   (iptables), so a repair never duplicates a rule.
 */
import type { FirewallBackend } from '../model/values.js';
import type { FirewallScripts } from '../plan/firewall/scripts.js';

/** Whether a network's rules are in the kernel. */
export type Presence = 'present' | 'absent' | 'partial';

export interface Firewall {
  readonly backend: FirewallBackend;
  /** Add the network's rules (one transaction). Fails if they cannot all be added. */
  apply(netName: string, scripts: FirewallScripts): Promise<void>;
  /** Remove the network's rules (one transaction). Missing rules are not an error. */
  remove(netName: string, scripts: FirewallScripts): Promise<void>;
  /** Whether the network's rules are there, for adoption and drift checks. */
  present(netName: string, scripts: FirewallScripts): Promise<Presence>;
  /**
   * Make the rules exactly as planned whatever is there now (repair drift), without duplicates.
   * Resolves with what was found before the repair.
   */
  repair(netName: string, scripts: FirewallScripts): Promise<Presence>;
}

export interface FirewallChoice {
  backend: FirewallBackend;
  reason: string;
}
