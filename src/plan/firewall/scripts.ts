/**
 * What the firewall planner hands to a driver: one network's rendered scripts for one backend, an
 * `apply` and a `remove` text per family. Types only.
 */
import type { IptablesFamilyScripts, IptablesScripts } from './iptables.js';
import type { NftScripts } from './nftables.js';

export type { IptablesScripts, NftScripts };

/** An apply text and the remove text that deletes exactly what it added. */
export type ScriptPair = IptablesFamilyScripts;

export type FirewallScripts =
  | { backend: 'nftables'; nft: NftScripts }
  | { backend: 'iptables'; iptables: IptablesScripts };
