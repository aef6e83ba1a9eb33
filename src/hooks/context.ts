/**
 * What the hook handler works with. The daemon builds one context for its lifetime (its engine, its
 * networks, its firewall); the in-process fallback (src/hooks/main.ts) builds one per hook call. Both
 * run the same handler (handler.ts) on it.
 */
import type { Engine } from '../engine/types.js';
import type { Network } from '../model/network.js';
import type { PortForwardTarget } from '../model/values.js';
import type { Logger } from '../util/log.js';
import type { LockManager } from './lock.js';
import type { DomainRecordStore } from './records.js';

/** One inbound forward, resolved to its DNAT target, and where it belongs. */
export interface ForwardRule extends PortForwardTarget {
  /** virtnet or libvirt network the guest is on. */
  network: string;
  /** The network's bridge when known (forwarded traffic is accepted towards it). */
  bridge?: string;
}

/** The port forwards of one domain, installed and removed as one unit (own chain/table). */
export interface DomainForwards {
  /** Record key (uuid). */
  key: string;
  domain: string;
  rules: ForwardRule[];
}

/**
 * Installs a domain's port-forward rules in one transaction, replacing whatever that domain had
 * (so re-applying never duplicates), and removes them again (absent rules are not an error).
 */
export interface PortForwarder {
  apply(f: DomainForwards): Promise<void>;
  remove(f: DomainForwards): Promise<void>;
}

/** Events for the bus (the daemon turns them into signals). */
export interface HookEvents {
  'port-attached': { network: string; ifname: string; mac: string; domain: string };
  'port-detached': { network: string; ifname: string; domain: string };
  /** A libvirt-managed network's hook call (start, started, stopped, port-created, …). */
  'libvirt-network': { name: string; operation: string; domain?: string; mac?: string };
}

export type HookEventSink = <K extends keyof HookEvents>(event: K, payload: HookEvents[K]) => void;

export type HookEngine = Pick<
  Engine,
  'isActive' | 'info' | 'addHost' | 'removeHost' | 'attachPort' | 'detachPort'
>;

export interface HookContext {
  /** The defined virtnet networks (current definitions). */
  networks(): readonly Network[];
  engine: HookEngine;
  forwarder: PortForwarder;
  records: DomainRecordStore;
  locks: LockManager;
  emit: HookEventSink;
  log: Pick<Logger, 'info' | 'warning' | 'error' | 'debug'>;
  /**
   * Set by the daemon (a long-lived process): at `start` a domain's port forwards are installed in
   * the background — QEMU is launched meanwhile, and no connection can reach a guest that is not
   * running yet — and at `stopped` removed in the background (the guest is gone); the domain's next
   * hook call (`started`, `release`, …) waits for them and reports a failure. Keyed by record key;
   * the value settles to an error message or undefined. Without it (the in-process fallback, one process per call) they are installed before `start`
   * returns.
   */
  deferred?: Map<string, Promise<string | undefined>>;
  /**
   * With `deferred`: settles once this call has been answered (the daemon's reply is on its way);
   * background work waits for it before it starts. Absent: background work starts at once.
   */
  replied?: Promise<void>;
}
