/**
 * The hook handler as the daemon uses it: Manager.HookEvent(object, operation, sub_operation, extra,
 * xml) → handleHookEvent with the daemon's engine, networks and firewall. Built once per daemon;
 * records and locks live under `<run dir>/hooks/` (shared with the in-process fallback, main.ts).
 *
 * `object` is libvirt's first hook argument: the domain's or the network's NAME. Which hook called is
 * read from the XML (`<domain>` → qemu, `<hookData>` → network).
 */
import type { Engine } from '../engine/types.js';
import { ValidationError } from '../errors.js';
import { type CommandRunner, createRunner } from '../exec/runner.js';
import { makeFirewall } from '../firewall/detect.js';
import type { Network } from '../model/network.js';
import type { Logger } from '../util/log.js';
import { hookKindOfXml, parseHookArgs } from './args.js';
import type { HookContext, HookEventSink, PortForwarder } from './context.js';
import { FirewallForwarder } from './forwarder.js';
import { handleHookEvent, reconcileRecords } from './handler.js';
import { LockManager } from './lock.js';
import { domainsByMac, FileRecordStore, hookPaths } from './records.js';

export { hookPaths };

export interface DaemonHooksOptions {
  engine: Engine;
  /** Run dir of the daemon (records under `<runDir>/hooks/`). */
  runDir: string;
  log: Pick<Logger, 'info' | 'warning' | 'error' | 'debug'>;
  runner?: CommandRunner;
  /** For tests: replaces the firewall-backed forwarder. */
  forwarder?: PortForwarder;
}

/** What the service supplies per call: its current definitions and where events go. */
export interface HookServiceView {
  networks(): readonly Network[];
  emit: HookEventSink;
}

export interface DaemonHooks {
  /** Manager.HookEvent's behaviour: returns the hook's stdout ('' except migrate/restore). */
  hookEvent(
    args: { object: string; operation: string; subOperation: string; extra: string; xml: string },
    view: HookServiceView,
  ): Promise<string>;
  /** After daemon start: re-ensure what running domains had (returns problems, one per domain). */
  reconcile(view: HookServiceView): Promise<string[]>;
  /** The domain owning each MAC on `network` (lower-case MACs), from the hook records. */
  domainsByMac(network: string): Promise<Map<string, string>>;
}

export function createDaemonHooks(opts: DaemonHooksOptions): DaemonHooks {
  const paths = hookPaths(opts.runDir);
  const records = new FileRecordStore(paths.records);
  const locks = new LockManager({ dir: paths.locks });
  let networks: () => readonly Network[] = () => [];
  const deferred = new Map<string, Promise<string | undefined>>();
  const forwarder =
    opts.forwarder ??
    new FirewallForwarder({
      firewall: makeFirewall(opts.runner ?? createRunner(), {
        backend: opts.engine.firewallBackend,
        reason: 'the engine’s backend',
      }),
      networks: () => networks(),
      log: opts.log,
    });
  const ctxFor = (view: HookServiceView, replied?: Promise<void>): HookContext => {
    networks = () => view.networks();
    return {
      ...(replied ? { replied } : {}),
      networks: view.networks,
      engine: opts.engine,
      forwarder,
      records,
      locks,
      emit: view.emit,
      log: opts.log,
      deferred,
    };
  };
  return {
    async hookEvent(a, view) {
      const kind = hookKindOfXml(a.xml);
      if (!kind)
        throw ValidationError.one(
          'xml',
          a.xml.slice(0, 40),
          'expected a <domain> (qemu hook) or <hookData> (network hook) document',
        );
      parseHookArgs(kind, [a.object, a.operation, a.subOperation, a.extra]);
      const t0 = performance.now();
      // Background work of this call (deferred firewall runs) starts once the reply has gone out: the
      // caller sends it in the microtasks after this promise settles, before the next event-loop turn.
      let answered!: () => void;
      const replied = new Promise<void>((r) => {
        answered = r;
      });
      try {
        return await handleHookEvent(ctxFor(view, replied), { kind, ...a });
      } finally {
        opts.log.debug(`hook ${kind} ${a.object} ${a.operation}: ${(performance.now() - t0).toFixed(1)} ms`);
        setImmediate(answered);
      }
    },
    reconcile(view) {
      return reconcileRecords(ctxFor(view));
    },
    async domainsByMac(network) {
      return domainsByMac(await records.list(), network);
    },
  };
}
