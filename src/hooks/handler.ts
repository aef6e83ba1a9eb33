/**
 * The hook handler: what virtnet does when libvirt reports a domain or network event. The SAME code
 * runs in the daemon (Manager.HookEvent over the bus) and in the in-process fallback (main.ts) when
 * no daemon answers.
 *
 * Domain (qemu hook):
 * - `prepare`: validate the domain's virtnet metadata against the networks and reserve what it asks
 *   for (fixed IP per network, host ports globally). A conflict, an unknown or stopped virtnet network
 *   or bad metadata fails the call (the domain does not start).
 * - `start` (tap exists now), `started`, `reconnect`: enslave `type='ethernet'` taps, add the DHCP
 *   reservation / DNS name (metadata IP, else MAC + the domain's name), install the domain's port
 *   forwards, emit `port-attached`. What was done is recorded BEFORE doing it (records.ts), so a crash
 *   half-way still leaves enough to undo. `started` after a successful `start` does nothing;
 *   `reconnect` re-ensures everything idempotently (no rule is removed and re-added one by one: the
 *   domain's forwards are replaced in one transaction), so running guests are not disturbed.
 * - `stopped`: undo exactly what the record says (the XML no longer names taps or bridges), emit
 *   `port-detached`; the reservation stays until `release`, which forgets the domain. In the daemon
 *   the port forwards are removed in the background (see undo); `release` waits for that.
 * Network (network hook, libvirt-managed networks): emit the event; on `started` re-apply the port
 *   forwards of running domains on that network. `port-created` / `port-deleted` on libvirt's network
 *   of a virtnet network's name and bridge: a NIC hot-plugged into a running domain gets its
 *   reservation / DNS name (and loses it on detach); at domain start/stop they do nothing (the qemu
 *   hook's calls do the work). See plan-hotplug.ts.
 *
 * Serialized per network (and per domain, and globally for host ports) through ctx.locks, which also
 * hold across processes. Failures are thrown (ValidationError / ConflictError / others); the caller
 * turns them into one line and an exit code (`blocksStart`).
 */
import { ConflictError, ValidationError } from '../errors.js';
import { type Domain, type NetworkHookData, parseDomainXml, parseNetworkHookData } from '../model/domain.js';
import { Revert, type RevertFailure } from '../util/revert.js';
import { actionFor, blocksStart, type HookKind, hookKindOfXml } from './args.js';
import type { DomainForwards, ForwardRule, HookContext } from './context.js';
import { type HotplugPlan, planHotplug } from './plan-hotplug.js';
import { findConflicts, planPorts } from './plan-ports.js';
import { type DomainRecord, domainKey, type PortRecord } from './records.js';

export interface HookEventInput {
  /** Which hook; when absent it is read from the XML's root element (`<domain>` / `<hookData>`). */
  kind?: HookKind;
  object: string;
  operation: string;
  subOperation: string;
  extra: string;
  xml: string;
}

/** A `prepared` record older than this no longer holds its reservation (its domain never started). */
export const STALE_PREPARED_MS = 10 * 60_000;

/** Handle one hook call. Returns what the hook prints on stdout (the XML for migrate/restore, else ''). */
export async function handleHookEvent(ctx: HookContext, ev: HookEventInput): Promise<string> {
  const fromXml = hookKindOfXml(ev.xml);
  const kind = ev.kind ?? fromXml;
  if (!kind)
    throw ValidationError.one(
      'stdin',
      ev.xml.slice(0, 40),
      'expected a <domain> (qemu hook) or <hookData> (network hook) document',
    );
  if (ev.kind && fromXml && ev.kind !== fromXml)
    throw ValidationError.one('stdin', ev.xml.slice(0, 40), `not the XML of a ${ev.kind} hook call`);
  const action = actionFor(kind, ev.operation);
  if (action === 'ignore') return '';
  if (action === 'passthrough') return ev.xml;
  if (kind === 'qemu') await handleDomain(ctx, ev);
  else await handleNetwork(ctx, ev);
  return '';
}

/** One line for stderr / the bus error: "virtnet: <hook> <object> <operation>: <reason>". */
export function describeFailure(
  kind: HookKind | undefined,
  object: string,
  operation: string,
  e: unknown,
): string {
  const msg = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
  return `virtnet: ${kind ?? 'hook'} ${object} ${operation}: ${msg}`;
}

export { blocksStart };

// ------------------------------------------------------------------------------------------------
// Domains

function lockKeys(key: string, ports: readonly PortRecord[]): string[] {
  const keys = [`dom:${key}`];
  for (const p of ports) keys.push(p.kind === 'network' ? `lvnet:${p.network}` : `net:${p.network}`);
  if (ports.some((p) => p.forwards.length)) keys.push('host-ports');
  return keys;
}

async function handleDomain(ctx: HookContext, ev: HookEventInput): Promise<void> {
  const domain = parseDomainXml(ev.xml);
  if (domain.name !== ev.object)
    throw ValidationError.one('domain/name', domain.name, `does not match the hook's object '${ev.object}'`);
  const key = domainKey(domain);
  switch (ev.operation) {
    case 'prepare':
      return prepare(ctx, domain, key);
    case 'start':
    case 'started':
    case 'reconnect':
      return startPorts(ctx, domain, key, ev.operation);
    case 'stopped':
    case 'release':
      return stopPorts(ctx, domain, key, ev.operation);
  }
}

/** Wait for a domain's background forward installation (see HookContext.deferred); its error, if any. */
async function settleDeferred(ctx: HookContext, key: string): Promise<string | undefined> {
  const p = ctx.deferred?.get(key);
  if (!p) return undefined;
  const err = await p;
  if (ctx.deferred?.get(key) === p) ctx.deferred.delete(key);
  return err;
}

function requireRunning(ctx: HookContext, ports: readonly PortRecord[]): void {
  const down = [...new Set(ports.filter((p) => p.kind !== 'network').map((p) => p.network))].filter(
    (n) => !ctx.engine.isActive(n),
  );
  if (down.length)
    throw new ConflictError(
      `virtnet network${down.length > 1 ? 's' : ''} ${down.map((n) => `'${n}'`).join(', ')} not running (start it first: virtnetctl start ${down[0]})`,
    );
}

async function otherRecords(ctx: HookContext, key: string): Promise<DomainRecord[]> {
  const now = Date.now();
  return (await ctx.records.list()).filter(
    (r) =>
      domainKey({ name: r.domain, uuid: r.uuid }) !== key &&
      !(r.phase === 'prepared' && now - Date.parse(r.updatedAt) > STALE_PREPARED_MS),
  );
}

async function checkConflicts(ctx: HookContext, domain: Domain, key: string, ports: PortRecord[]) {
  const problems = findConflicts(domain, ports, {
    networks: ctx.networks(),
    records: await otherRecords(ctx, key),
    extraHosts: (n) => ctx.engine.info(n)?.extraHosts ?? [],
  });
  if (problems.length) throw new ConflictError(problems.map((p) => `${p.path}: ${p.reason}`).join('; '));
}

async function prepare(ctx: HookContext, domain: Domain, key: string): Promise<void> {
  const ports = planPorts(domain, ctx.networks());
  if (!ports.length) {
    await ctx.records.delete(key); // a stale reservation from an earlier definition of this domain
    return;
  }
  requireRunning(ctx, ports);
  await ctx.locks.withLocks(lockKeys(key, ports), async () => {
    const existing = await ctx.records.get(key);
    if (existing?.phase === 'started')
      throw new ConflictError(`domain '${domain.name}' is recorded as running (stopped hook missed?)`);
    await checkConflicts(ctx, domain, key, ports);
    await ctx.records.put(newRecord(domain, 'prepared', ports));
  });
}

function newRecord(domain: Domain, phase: DomainRecord['phase'], ports: PortRecord[]): DomainRecord {
  const r: DomainRecord = {
    version: 1,
    domain: domain.name,
    phase,
    ports,
    updatedAt: new Date().toISOString(),
  };
  if (domain.uuid) r.uuid = domain.uuid;
  return r;
}

/** The forward rules of a record's ports, resolved to their DNAT targets. */
export function forwardRules(
  ctx: Pick<HookContext, 'networks'>,
  ports: readonly PortRecord[],
): ForwardRule[] {
  const rules: ForwardRule[] = [];
  for (const p of ports) {
    const bridge =
      p.kind === 'network' ? undefined : ctx.networks().find((n) => n.name === p.network)?.bridge.name;
    for (const f of p.forwards) {
      for (const family of f.families) {
        const guestIp = family === 'ipv4' ? p.ip : p.ip6;
        if (!guestIp) continue; // the metadata parser guarantees it; be safe
        const r: ForwardRule = {
          proto: f.proto,
          family,
          hostPort: f.hostPort,
          guestPort: f.guestPort,
          guestIp,
          network: p.network,
        };
        if (f.hostAddress) r.hostAddress = f.hostAddress;
        if (bridge) r.bridge = bridge;
        rules.push(r);
      }
    }
  }
  return rules;
}

/** The forwards a record says are in place (a port detached from the running domain has none). */
function domainForwards(ctx: HookContext, rec: DomainRecord): DomainForwards {
  return {
    key: domainKey({ name: rec.domain, uuid: rec.uuid }),
    domain: rec.domain,
    rules: forwardRules(
      ctx,
      rec.ports.filter((p) => !p.unplugged),
    ),
  };
}

/**
 * The recorded ports are the planned ones: same interfaces on the same networks with the same taps
 * and settings. A port the network hook added (hot-plugged: its position and tap are not known there)
 * matches the planned one of its MAC; a detached one (unplugged) is no longer one of them.
 */
function samePorts(recorded: readonly PortRecord[], planned: readonly PortRecord[]): boolean {
  const live = recorded.filter((p) => !p.unplugged);
  if (live.length !== planned.length) return false;
  const settings = (p: PortRecord) =>
    JSON.stringify([p.kind, p.network, p.mac, p.ip, p.ip6, p.hostname, p.forwards]);
  return live.every((p) =>
    planned.some(
      (q) => settings(p) === settings(q) && (p.hotplugged || (p.index === q.index && p.ifname === q.ifname)),
    ),
  );
}

function staticHostHasMac(ctx: HookContext, network: string, mac: string | undefined): boolean {
  const net = ctx.networks().find((n) => n.name === network);
  return !!net?.ips.some((d) => d.dhcp?.hosts.some((h) => h.mac?.toLowerCase() === mac));
}

async function startPorts(ctx: HookContext, domain: Domain, key: string, op: string): Promise<void> {
  const planned = planPorts(domain, ctx.networks());
  const fatal = op === 'start';
  const existingOutside = await ctx.records.get(key);
  if (!planned.length && !existingOutside) return;
  const keys = lockKeys(key, [...planned, ...(existingOutside?.ports ?? [])]);
  await ctx.locks.withLocks(keys, async () => {
    const pendingError = await settleDeferred(ctx, key);
    const existing = await ctx.records.get(key);
    if (op === 'started' && existing?.phase === 'started' && samePorts(existing.ports, planned)) {
      if (pendingError) throw new Error(`port forwards: ${pendingError}`);
      return;
    }
    if (!planned.length) {
      // virtnet no longer has anything to do for this domain: undo what an earlier call did.
      if (existing?.phase === 'started') await undo(ctx, existing);
      await ctx.records.delete(key);
      return;
    }
    requireRunning(ctx, planned);
    await checkConflicts(ctx, domain, key, planned);
    if (existing?.phase === 'started' && !samePorts(existing.ports, planned)) {
      // Interfaces changed while running (e.g. libvirtd restarted with a new tap name): remove the
      // old set first; an unchanged set is re-ensured in place below.
      await undo(ctx, existing);
    }

    // Intent first: what we are about to do is recorded, so it can be undone whatever happens next.
    const rec = newRecord(
      domain,
      'started',
      planned.map((p) => {
        const q: PortRecord = { ...p };
        if (p.kind === 'ethernet') q.attached = true;
        if (
          p.kind !== 'network' &&
          (p.ip || p.ip6 || p.hostname) &&
          !staticHostHasMac(ctx, p.network, p.mac) &&
          !automaticNameOnSpanMember(ctx, domain, p)
        )
          q.hostAdded = true;
        return q;
      }),
    );
    const fw = domainForwards(ctx, rec);
    if (fw.rules.length) rec.forwardsApplied = true;
    await ctx.records.put(rec);

    const errors: string[] = [];
    const step = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        if (fatal) throw e;
        errors.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    // In the daemon the forwards of a starting domain go in in the background (see deferFirewall),
    // once the engine's part is done and the call answered: they do not compete with either.
    const deferApply = fw.rules.length > 0 && op === 'start' && !!ctx.deferred;
    // How to take this call back, registered before anything changes (each undo checks what is
    // there). Deferred forwards are not installed before the call is answered: nothing of them.
    const revert = new Revert();
    if (fw.rules.length && !deferApply) revert.add('remove port forwards', () => ctx.forwarder.remove(fw));
    portsRevert(ctx, rec, revert);
    try {
      // The engine's part (taps, reservations) and the firewall's part (the domain's forwards) are
      // independent: they run side by side, and a failure of either is seen once both are done.
      const enginePart = async () => {
        for (const p of rec.ports) {
          if (p.attached) {
            if (!p.ifname)
              throw ValidationError.one(
                `domain/devices/interface[${p.index}]/target@dev`,
                undefined,
                'no tap name yet (libvirt gives it from the start hook on)',
              );
            await step(`attach ${p.ifname} to ${p.network}`, () =>
              ctx.engine.attachPort(p.network, p.ifname!, { mac: p.mac, domain: domain.name }),
            );
          }
          if (p.hostAdded) await step(`reservation on ${p.network}`, () => ensureHost(ctx, p));
        }
      };
      const firewallPart = async () => {
        if (!fw.rules.length || deferApply) return;
        await step('port forwards', () => ctx.forwarder.apply(fw));
      };
      const failed = (await Promise.allSettled([enginePart(), firewallPart()])).find(
        (r): r is PromiseRejectedResult => r.status === 'rejected',
      );
      if (failed) throw failed.reason;
      revert.success();
      if (deferApply)
        deferFirewall(ctx, key, `port forwards of ${domain.name}`, () => ctx.forwarder.apply(fw));
    } catch (e) {
      // `start` failed: the domain will not run. Take back everything this call did, keep the
      // reservation (libvirt's `release` follows and forgets it), and report.
      const failed = revertError(await revert.fail());
      if (failed) ctx.log.warning(`virtnet: rollback for ${domain.name}: ${String(failed)}`);
      await ctx.records.put({ ...newRecord(domain, 'prepared', planned) });
      throw e;
    }
    // Engine.attachPort announces the taps it attached itself; the others (libvirt enslaved them) here.
    for (const p of rec.ports) {
      if (p.kind !== 'network' && p.ifname && !p.attached)
        ctx.emit('port-attached', {
          network: p.network,
          ifname: p.ifname,
          mac: p.mac ?? '',
          domain: domain.name,
        });
    }
    if (errors.length) throw new Error(errors.join('; '));
  });
}

/**
 * A port that asks for nothing but the automatic DNS name (the domain's name; no fixed address, no
 * name in the metadata) on a host that is a member of a span: names are the gateway's, so nothing is
 * added here and the domain starts (or arrives by migration) as on any other host; the guest's name
 * comes from its DHCP request to the gateway. What the metadata asks for explicitly is still refused.
 */
function automaticNameOnSpanMember(ctx: HookContext, domain: Domain, p: PortRecord): boolean {
  if (p.ip || p.ip6) return false;
  if (domain.interfaces.find((i) => i.index === p.index)?.virtnet?.name) return false;
  return ctx.engine.info(p.network)?.span?.role === 'member';
}

/** Add the port's DHCP reservation / DNS name unless exactly that entry is already there. */
async function ensureHost(ctx: HookContext, p: PortRecord): Promise<void> {
  const have = ctx.engine.info(p.network)?.extraHosts ?? [];
  const ip = p.ip ?? p.ip6;
  const same = have.find((h) => h.mac === p.mac && h.ip === ip && h.hostname === p.hostname);
  if (same) return;
  if (have.some((h) => h.mac === p.mac)) await ctx.engine.removeHost(p.network, p.mac!);
  const entry: { mac?: string; ip?: string; hostname?: string } = { mac: p.mac };
  if (ip) entry.ip = ip;
  if (p.hostname) entry.hostname = p.hostname;
  await ctx.engine.addHost(p.network, entry);
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * The record's ports taken back, on one Revert: per port its reservation removed (when this call's
 * record added one and it is there) and its tap detached from the bridge (Engine.detachPort announces
 * it) — or, for a port libvirt enslaved, its detach announced. Registered last port first, so that
 * `fail()` takes them back in the record's order. Each undo checks what is there, so a port the
 * failed call never reached costs nothing.
 */
function portsRevert(ctx: HookContext, rec: DomainRecord, revert = new Revert()): Revert {
  for (const p of [...rec.ports].reverse()) {
    let announced = false;
    revert.add(`detach ${p.ifname} from ${p.network}`, async () => {
      try {
        if (p.attached && p.ifname && ctx.engine.isActive(p.network)) {
          // Engine.detachPort forgets the port (and announces it); it only runs `ip link set nomaster`
          // when the tap is still on the bridge (it usually vanished with QEMU already).
          if ((ctx.engine.info(p.network)?.ports ?? []).includes(p.ifname)) {
            announced = true;
            await ctx.engine.detachPort(p.network, p.ifname, { domain: rec.domain });
          }
        }
      } finally {
        if (p.kind !== 'network' && p.ifname && !announced)
          ctx.emit('port-detached', { network: p.network, ifname: p.ifname, domain: rec.domain });
      }
    });
    revert.add(`remove reservation ${p.mac} from ${p.network}`, async () => {
      if (p.hostAdded && p.mac && ctx.engine.isActive(p.network)) {
        const have = ctx.engine.info(p.network)?.extraHosts ?? [];
        if (have.some((h) => h.mac === p.mac)) await ctx.engine.removeHost(p.network, p.mac);
      }
    });
  }
  return revert;
}

/** The failures of a Revert as one error (`step: message; …`), or undefined when all went well. */
function revertError(failures: RevertFailure[]): Error | undefined {
  return failures.length
    ? new Error(failures.map((f) => `${f.step}: ${message(f.error)}`).join('; '))
    : undefined;
}

/**
 * Undo what a `started` record says was done. Best effort: every step is tried; errors are joined.
 * With `deferForwards` (the daemon at `stopped`) the domain's port forwards are removed in the
 * background, like they were installed at `start`: the guest is gone, and the domain's next hook
 * call (`release`, which libvirt sends right after) waits for the removal and reports its failure.
 */
async function undo(
  ctx: HookContext,
  rec: DomainRecord,
  opts: { deferForwards?: boolean } = {},
): Promise<void> {
  // The firewall's part runs beside the engine's (independent, as at start).
  const deferRemoval = !!(rec.forwardsApplied && opts.deferForwards && ctx.deferred);
  const firewallPart: Promise<string | undefined> =
    rec.forwardsApplied && !deferRemoval
      ? ctx.forwarder.remove(domainForwards(ctx, rec)).then(
          () => undefined,
          (e) => `remove port forwards: ${message(e)}`,
        )
      : Promise.resolve(undefined);
  const ports = revertError(await portsRevert(ctx, rec).fail());
  const fwError = await firewallPart;
  if (deferRemoval) {
    const fw = domainForwards(ctx, rec);
    deferFirewall(ctx, fw.key, `removing port forwards of ${rec.domain}`, () => ctx.forwarder.remove(fw));
  }
  const errors = [...(ports ? [ports.message] : []), ...(fwError ? [fwError] : [])];
  if (errors.length) throw new Error(errors.join('; '));
}

/**
 * The daemon's background firewall work for a domain (its forwards installed at `start`, removed at
 * `stopped`): started once the hook call has been answered (ctx.replied), so the nft/iptables run
 * neither delays the answer nor competes with it; the domain's next hook call waits for it
 * (settleDeferred) and gets its error.
 */
function deferFirewall(ctx: HookContext, key: string, what: string, run: () => Promise<void>): void {
  const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));
  ctx.deferred?.set(
    key,
    (ctx.replied ?? Promise.resolve()).then(run).then(
      () => undefined,
      (e) => {
        ctx.log.warning(`virtnet: ${what}: ${msg(e)}`);
        return msg(e);
      },
    ),
  );
}

async function stopPorts(ctx: HookContext, domain: Domain, key: string, op: string): Promise<void> {
  const outside = await ctx.records.get(key);
  if (!outside) return;
  await ctx.locks.withLocks(lockKeys(key, outside.ports), async () => {
    // A failed background install is removed below anyway; a failed background removal (deferred
    // at `stopped`) is tried again below.
    const pending = ctx.deferred?.has(key) ?? false;
    const pendingError = await settleDeferred(ctx, key);
    const rec = await ctx.records.get(key);
    if (!rec) return;
    let failure: unknown;
    let forwardsLeft = false;
    if (rec.phase === 'started') {
      const deferForwards = op === 'stopped' && !!ctx.deferred;
      try {
        await undo(ctx, rec, { deferForwards });
      } catch (e) {
        failure = e;
      }
      forwardsLeft = deferForwards && !!rec.forwardsApplied;
    } else if (rec.forwardsApplied && !(pending && pendingError === undefined)) {
      // Forwards whose removal was deferred and failed, or never ran (the daemon restarted since).
      try {
        await ctx.forwarder.remove(domainForwards(ctx, rec));
      } catch (e) {
        failure = new Error(`remove port forwards: ${e instanceof Error ? e.message : String(e)}`);
        forwardsLeft = true;
      }
    }
    if (op === 'release') await ctx.records.delete(key);
    else {
      const next = newRecord(
        domain,
        'prepared',
        rec.ports.map(({ attached: _a, hostAdded: _h, ...p }) => p),
      );
      // Until the deferred removal is known to be done, the record keeps saying the forwards exist.
      if (forwardsLeft) next.forwardsApplied = true;
      await ctx.records.put(next);
    }
    if (failure) throw failure;
  });
}

// ------------------------------------------------------------------------------------------------
// Networks (libvirt-managed)

async function handleNetwork(ctx: HookContext, ev: HookEventInput): Promise<void> {
  const data = parseNetworkHookData(ev.xml);
  if (data.network.name !== ev.object)
    throw ValidationError.one(
      'hookData/network/name',
      data.network.name,
      `does not match the hook's object '${ev.object}'`,
    );
  const payload: { name: string; operation: string; domain?: string; mac?: string } = {
    name: data.network.name,
    operation: ev.operation,
  };
  if (data.port?.owner?.name) payload.domain = data.port.owner.name;
  if (data.port?.mac) payload.mac = data.port.mac;
  ctx.emit('libvirt-network', payload);
  if (ev.operation === 'started') await reapplyLibvirtForwards(ctx, data.network.name);
  if (ev.operation === 'port-created' || ev.operation === 'port-deleted')
    await hotplug(ctx, ev.operation, data);
}

/**
 * A NIC attached to / detached from a running domain on a virtnet network (see plan-hotplug.ts):
 * its reservation / DNS name and forwards are added or removed and the record follows, so a daemon
 * restart (reconcileRecords) and the domain's stop (undo) see it. Decided again under the locks.
 */
async function hotplug(ctx: HookContext, op: string, data: NetworkHookData): Promise<void> {
  const owner = data.port?.owner;
  if (!owner) return;
  const key = domainKey({ name: owner.name, uuid: owner.uuid });
  const first = planHotplug(op, data, ctx.networks(), await ctx.records.get(key));
  if (first.action === 'none') {
    ctx.log.debug(`virtnet: network ${data.network.name} ${op}: nothing to do (${first.reason})`);
    return;
  }
  const outside = await ctx.records.get(key);
  const touched: PortRecord = { index: -1, kind: 'bridge', network: first.network, forwards: [] };
  if (first.action === 'attach') touched.forwards = first.port.forwards;
  await ctx.locks.withLocks(lockKeys(key, [touched, ...(outside?.ports ?? [])]), async () => {
    const pendingError = await settleDeferred(ctx, key);
    if (pendingError) ctx.log.warning(`virtnet: ${owner.name}: earlier port forwards: ${pendingError}`);
    const rec = await ctx.records.get(key);
    const plan = planHotplug(op, data, ctx.networks(), rec);
    if (plan.action === 'none') return;
    if (!ctx.engine.isActive(plan.network))
      throw new ConflictError(
        `virtnet network '${plan.network}' not running: no DNS name or reservation for ${data.port?.mac} (start it: virtnetctl start ${plan.network})`,
      );
    if (plan.action === 'attach') await hotplugAttach(ctx, plan, rec);
    else await hotplugDetach(ctx, plan, rec!);
  });
}

type AttachPlan = Extract<HotplugPlan, { action: 'attach' }>;
type DetachPlan = Extract<HotplugPlan, { action: 'detach' }>;

function samePort(p: PortRecord, network: string, mac: string | undefined): boolean {
  return p.kind !== 'network' && p.network === network && p.mac === mac;
}

async function hotplugAttach(ctx: HookContext, plan: AttachPlan, rec: DomainRecord | undefined) {
  const prev = rec?.ports.find((p) => samePort(p, plan.network, plan.port.mac));
  if (prev && !prev.unplugged) {
    // Already in place (the qemu hook's port, or a repeated call): make sure, change nothing else.
    if (prev.hostAdded) await ensureHost(ctx, prev);
    return;
  }
  const port: PortRecord = { ...plan.port };
  if (plan.isNew) {
    const problems = findConflicts(plan.domain, [port], {
      networks: ctx.networks(),
      records: await otherRecords(ctx, plan.key),
      extraHosts: (n) => ctx.engine.info(n)?.extraHosts ?? [],
    });
    if (problems.length)
      throw new ConflictError(problems.map((p) => `${p.path.replace(/\[-1\]/, '')}: ${p.reason}`).join('; '));
  }
  if ((port.ip || port.ip6 || port.hostname) && !staticHostHasMac(ctx, port.network, port.mac))
    port.hostAdded = true;
  else delete port.hostAdded;
  const before: DomainRecord = rec ?? {
    version: 1,
    domain: plan.domain.name,
    ...(plan.domain.uuid ? { uuid: plan.domain.uuid } : {}),
    phase: 'started',
    ports: [],
    updatedAt: new Date().toISOString(),
  };
  const next: DomainRecord = {
    ...before,
    ports: [...before.ports.filter((p) => !samePort(p, port.network, port.mac)), port],
  };
  const fw = domainForwards(ctx, next);
  if (fw.rules.length) next.forwardsApplied = true;
  // Intent first, as at `start`: the record says what is about to exist.
  await ctx.records.put(next);
  if (port.hostAdded) await ensureHost(ctx, port);
  if (port.forwards.length) await ctx.forwarder.apply(fw);
}

async function hotplugDetach(ctx: HookContext, plan: DetachPlan, rec: DomainRecord) {
  const port = rec.ports.find((p) => samePort(p, plan.network, plan.mac))!;
  const errors: string[] = [];
  let hostLeft = false;
  // Removal first, then the record: a crash in between leaves a record that still names what is
  // there (reconcile re-ensures it; the domain's stop removes it), never an entry nobody knows of.
  if (port.hostAdded && (ctx.engine.info(plan.network)?.extraHosts ?? []).some((h) => h.mac === plan.mac)) {
    try {
      await ctx.engine.removeHost(plan.network, plan.mac);
    } catch (e) {
      hostLeft = true;
      errors.push(
        `remove reservation ${plan.mac} from ${plan.network}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
  const rest = rec.ports.filter((p) => p !== port);
  // A hot-plugged port leaves the record; one the qemu hook planned stays, detached, with its settings.
  const gone = port.hotplugged
    ? rest
    : [...rest, (({ hostAdded: _h, ...p }) => ({ ...p, unplugged: true }))(port)];
  let forwardsLeft = false;
  if (rec.forwardsApplied && port.forwards.length) {
    try {
      await replaceForwards(ctx, rec, { ...rec, ports: gone });
    } catch (e) {
      forwardsLeft = true;
      errors.push(`port forwards: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const next: DomainRecord = { ...rec, ports: gone };
  if (hostLeft || forwardsLeft) {
    // Not all of it went: the record keeps the port as attached (with its reservation if that is
    // still there), so a repeated call or the domain's stop removes the rest.
    const { hostAdded: _h, ...p } = port;
    next.ports = [...rest, hostLeft ? port : p];
  } else if (!domainForwards(ctx, next).rules.length) delete next.forwardsApplied;
  if (next.ports.length === 0 && !next.forwardsApplied) await ctx.records.delete(plan.key);
  else await ctx.records.put(next);
  if (errors.length) throw new Error(errors.join('; '));
}

/**
 * The domain's forwards go from what `before` says to what `after` says: rule sets of networks left
 * without a rule are removed, the others replaced (each per-network set in one transaction).
 */
async function replaceForwards(ctx: HookContext, before: DomainRecord, after: DomainRecord) {
  const was = domainForwards(ctx, before);
  const now = domainForwards(ctx, after);
  const still = new Set(now.rules.map((r) => r.network));
  const gone = was.rules.filter((r) => !still.has(r.network));
  if (gone.length) await ctx.forwarder.remove({ ...was, rules: gone });
  if (now.rules.length) await ctx.forwarder.apply(now);
}

/** libvirt (re)started one of its networks: put the port forwards of its running domains back. */
export async function reapplyLibvirtForwards(ctx: HookContext, network: string): Promise<void> {
  const errors: string[] = [];
  for (const r of await ctx.records.list()) {
    if (r.phase !== 'started' || !r.forwardsApplied) continue;
    if (!r.ports.some((p) => p.kind === 'network' && p.network === network)) continue;
    const key = domainKey({ name: r.domain, uuid: r.uuid });
    try {
      await ctx.locks.withLocks(lockKeys(key, r.ports), async () => {
        await settleDeferred(ctx, key);
        const cur = await ctx.records.get(key);
        if (cur?.phase === 'started' && cur.forwardsApplied)
          await ctx.forwarder.apply(domainForwards(ctx, cur));
      });
    } catch (e) {
      errors.push(`${r.domain}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (errors.length) throw new Error(`re-applying port forwards on '${network}': ${errors.join('; ')}`);
}

/**
 * After a daemon restart: re-ensure what every `started` record says (reservations and forwards),
 * without disturbing running guests. Returns one message per domain that could not be reconciled.
 */
export async function reconcileRecords(ctx: HookContext): Promise<string[]> {
  const problems: string[] = [];
  for (const r of await ctx.records.list()) {
    if (r.phase !== 'started' && !r.forwardsApplied) continue;
    const key = domainKey({ name: r.domain, uuid: r.uuid });
    try {
      await ctx.locks.withLocks(lockKeys(key, r.ports), async () => {
        await settleDeferred(ctx, key);
        const cur = await ctx.records.get(key);
        if (cur?.phase === 'prepared' && cur.forwardsApplied) {
          // Stopped, but the (deferred) removal of its forwards may not have happened.
          await ctx.forwarder.remove(domainForwards(ctx, cur));
          const { forwardsApplied: _f, ...rest } = cur;
          await ctx.records.put(rest);
          return;
        }
        if (cur?.phase !== 'started') return;
        for (const p of cur.ports) {
          if (!ctx.engine.isActive(p.network) && p.kind !== 'network') continue;
          if (p.attached && p.ifname) {
            const attached = ctx.engine.info(p.network)?.ports ?? [];
            if (!attached.includes(p.ifname))
              await ctx.engine.attachPort(p.network, p.ifname, { mac: p.mac, domain: cur.domain });
          }
          if (p.hostAdded) await ensureHost(ctx, p);
        }
        if (cur.forwardsApplied) await ctx.forwarder.apply(domainForwards(ctx, cur));
      });
    } catch (e) {
      problems.push(`${r.domain}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return problems;
}
