/**
 * virtnetd's main: wire the config store, the engine and the bus, then serve until SIGTERM/SIGINT.
 *
 * Order: connect to the bus and claim org.virtnet.network1 first (a second daemon exits at once,
 * before touching anything); calls that arrive while loading wait. Then load the config dir, adopt
 * what is up, start autostart networks, answer calls, and tell systemd READY=1 (plus watchdog pings
 * when asked). On SIGTERM/SIGINT: STOPPING=1, release the name, close the engine WITHOUT stopping
 * networks (guests keep their network, like libvirt with KillMode=process), exit 0.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BUS_NAME, MANAGER_INTERFACE } from '../bus/api.js';
import { connectBus, type MessageBus, NameFlag, RequestNameReply, resolveBusAddress } from '../bus/dbus.js';
import { MANAGER_PATH, networkPath } from '../bus/path-encode.js';
import { networkCodec } from '../config/codec.js';
import type { NetworkCodec } from '../config/network-codec.js';
import { ConfigStore } from '../config/store.js';
import { leaseFilePath } from '../engine/engine.js';
import type { Engine } from '../engine/types.js';
import { createRunner } from '../exec/runner.js';
import { FirewalldZones } from '../firewall/firewalld.js';
import { createDaemonHooks } from '../hooks/bus-adapter.js';
import { LibvirtMigrator } from '../libvirt/migrate.js';
import { LibvirtPublisher } from '../libvirt/publisher.js';
import { Virsh } from '../libvirt/virsh.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { createLogger, type Logger } from '../util/log.js';
import { withTimeout } from '../util/timeout.js';
import { watchConfigDir } from '../watch/daemon-watch.js';
import type { DaemonOptions } from './args.js';
import { BusAuthorizer } from './authorize.js';
import { IdleGc } from './idle-gc.js';
import { createNotifier, type Notifier } from './notify.js';
import { ReconnectingBus } from './reconnect.js';
import { VirtnetService } from './service.js';
import { virtnetVersion } from './version.js';

export interface DaemonDeps {
  createEngine(opts: DaemonOptions, log: Logger): Promise<Engine> | Engine;
  codec?: NetworkCodec;
  log?: Logger;
  notifier?: Notifier;
}

export interface RunningDaemon {
  service: VirtnetService;
  bus: MessageBus;
  engine: Engine;
  /** Shut down (networks stay up). */
  shutdown(reason: string): Promise<void>;
  /** Resolves when the daemon has shut down. */
  done: Promise<void>;
}

export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export async function startDaemon(opts: DaemonOptions, deps: DaemonDeps): Promise<RunningDaemon> {
  const log = deps.log ?? createLogger({ level: opts.logLevel, format: opts.logFormat });
  const notifier = deps.notifier ?? createNotifier(process.env, undefined, (e) => log.warning(e.message));
  const address = resolveBusAddress(opts.bus);
  // Children (dnsmasq with --enable-dbus) must talk to the same bus as the daemon.
  process.env.DBUS_SYSTEM_BUS_ADDRESS = address;
  let bus: MessageBus;
  try {
    // The bus may be restarted under us: reconnect and own the name again (ReconnectingBus).
    bus = new ReconnectingBus(address, await connectBus(address), log);
  } catch (e) {
    throw new StartupError(`cannot connect to the bus at ${address}: ${(e as Error).message}`);
  }
  let done!: () => void;
  const donePromise = new Promise<void>((r) => {
    done = r;
  });
  bus.on('error', (e) => {
    log.error(`bus connection error: ${e instanceof Error ? e.message : String(e)}`);
  });

  await mkdir(opts.stateDir, { recursive: true, mode: 0o755 });
  const engine = await deps.createEngine(opts, log);
  // firewalld zones for the bridges, over this connection to the system bus.
  if (engine.useFirewallZones)
    await engine
      .useFirewallZones(new FirewalldZones(bus))
      .catch((e) => log.warning(`firewalld zones: ${(e as Error).message}`));
  const store = new ConfigStore(opts.configDir);
  const codec = deps.codec ?? networkCodec;
  const authorizer = new BusAuthorizer(bus, {
    onDecision: (d) => {
      if (!d.allowed) log.notice(`refused ${d.action} to ${d.sender} (uid ${d.uid ?? '?'}): ${d.why}`);
      else log.debug(`allowed ${d.action} to ${d.sender} (uid ${d.uid}): ${d.why}`);
    },
  });
  const hooks = createDaemonHooks({ engine, runDir: opts.runDir, log });
  const idleGc = new IdleGc();
  // Publishing into libvirt (--libvirt); it reads the service's networks, the service shows its status.
  let serviceRef: VirtnetService | undefined;
  const libvirtUri = opts.libvirt === 'none' ? undefined : opts.libvirt;
  const runner = createRunner();
  const publisher = new LibvirtPublisher({
    virsh: libvirtUri ? new Virsh(runner, libvirtUri, opts.runDir) : undefined,
    stateFile: join(opts.stateDir, 'libvirt-published.json'),
    log,
    view: () => serviceRef?.publishView() ?? [],
    onStatus: (name) => serviceRef?.refresh(name),
  });
  const service: VirtnetService = new VirtnetService({
    bus,
    engine,
    store,
    codec,
    authorize: (ctx, action, method) => authorizer.authorize(ctx, action, method),
    version: virtnetVersion(),
    log,
    hooks,
    onFileRemoved: opts.onFileRemoved,
    onChangeDone: idleGc.poke,
    publish: publisher,
    migrate: {
      import: (name, uri): Promise<string> => migrator.import(name, uri),
      revert: (name, uri): Promise<void> => migrator.revert(name, uri),
    },
  });
  serviceRef = service;
  const migrator: LibvirtMigrator = new LibvirtMigrator({
    ops: { ...service.migrateOps(), leaseFile: (name) => leaseFilePath(opts.runDir, name) },
    virsh: (uri) => new Virsh(runner, uri, opts.runDir),
    defaultUri: libvirtUri,
    journalDir: join(opts.stateDir, 'libvirt-import'),
    statusDir: opts.libvirtStatusDir,
    runner,
    publish: publisher,
    log,
    portEvent: async (network, operation, xml) => {
      await hooks.hookEvent(
        { object: network, operation, subOperation: 'begin', extra: '-', xml },
        service.hookView(),
      );
    },
  });

  const reply = await bus.requestName(BUS_NAME, NameFlag.DO_NOT_QUEUE);
  if (reply !== RequestNameReply.PRIMARY_OWNER && reply !== RequestNameReply.ALREADY_OWNER) {
    await service.close();
    bus.disconnect();
    throw new StartupError(`${BUS_NAME} is already owned on ${address}: another virtnetd is running`);
  }

  // The hooks send to this unique name (never activated, no NameHasOwner round trip): see hooks/qemu.
  const ownerFile = join(opts.runDir, 'daemon.busname');
  const writeOwner = async () => {
    await mkdir(opts.runDir, { recursive: true, mode: 0o755 });
    if (bus.name) await writeFileAtomic(ownerFile, `${bus.name}\n`, { mode: 0o644 });
  };
  await writeOwner();
  (bus as ReconnectingBus).on('reconnect', () => {
    writeOwner().catch((e: unknown) => log.warning(`cannot write ${ownerFile}: ${(e as Error).message}`));
  });

  await service.start();
  // Running domains' reservations and port forwards, as recorded by the hooks.
  for (const p of await hooks.reconcile(service.hookView()))
    log.warning(`hooks: could not reconcile a running domain: ${p}`);
  // A network's rules were lost and put back (a foreign flush): the domains' port forwards went
  // with them; re-apply what the hooks recorded (idempotent).
  engine.on('repaired', () => {
    // Fire-and-forget from an event handler; both outcomes are logged.
    void hooks.reconcile(service.hookView()).then(
      (ps) => {
        for (const p of ps) log.warning(`hooks: could not re-apply port forwards after a repair: ${p}`);
      },
      (e) => log.warning(`hooks: re-applying port forwards after a repair failed: ${(e as Error).message}`),
    );
  });
  // The config dir is watched: a valid change is applied like Reload; an invalid file is
  // announced (NetworkEvent … 'invalid') and changes nothing.
  const watcher = await watchConfigDir({
    dir: opts.configDir,
    check: (xml) => codec.parse(xml, { usedBridges: [] }).network.name,
    reload: () => service.reload(),
    onInvalid: (name) =>
      service.objects.signal(MANAGER_PATH, MANAGER_INTERFACE, 'NetworkEvent', 'sos', [
        name,
        networkPath(name),
        'invalid',
      ]),
    log,
  });
  // Not awaited: libvirt may be slow or absent; READY does not wait for it (the Libvirt property tells).
  publisher.start().catch((e: unknown) => log.warning(`libvirt: ${(e as Error).message}`));
  log.info(
    `virtnetd ${virtnetVersion()} ready on ${address} as ${BUS_NAME} (config ${opts.configDir}, firewall ${engine.firewallBackend})`,
  );
  await notifier.ready('serving org.virtnet.network1');
  const wd = notifier.startWatchdog();
  if (wd) log.debug(`watchdog pings every ${wd} ms`);

  let stopping = false;
  const shutdown = async (reason: string) => {
    if (stopping) return donePromise;
    stopping = true;
    log.info(`shutting down (${reason}); networks stay up`);
    await notifier.stopping();
    notifier.close();
    await watcher.close();
    await withTimeout(publisher.stop(), 5000, () => undefined);
    await service.close();
    await rm(ownerFile, { force: true }).catch(() => {});
    try {
      await bus.releaseName(BUS_NAME);
    } catch {}
    await engine.close();
    bus.disconnect();
    done();
    return donePromise;
  };
  return { service, bus, engine, shutdown, done: donePromise };
}

/**
 * Signal handlers for the daemon's whole life, installed ONCE before startDaemon: SIGTERM/SIGINT shut
 * down (networks stay up) — a stop requested while starting is honoured once the start is complete,
 * never half-way — and SIGHUP reloads the config dir. They are never swapped: node drops a signal
 * that is pending on a listener when the listener is removed, so replacing the "while starting"
 * handlers after start would lose a SIGTERM that arrives just then (the daemon would keep running).
 */
export function installSignals(log: Logger): { attach(d: RunningDaemon): Promise<void> } {
  let daemon: RunningDaemon | undefined;
  let pending: string | undefined;
  const stop = (sig: string) => {
    if (daemon) {
      daemon.shutdown(sig).then(
        () => process.exit(0),
        (e: unknown) => {
          log.error(`shutdown failed: ${(e as Error).message}`);
          process.exit(1);
        },
      );
      return;
    }
    if (pending) return;
    pending = sig;
    log.info(`${sig} while starting: will shut down once started`);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (!daemon) {
      log.info('SIGHUP while starting: ignored (the config dir is being read)');
      return;
    }
    log.info('SIGHUP: reloading the config dir');
    daemon.service.reload().catch((e) => log.error(`reload failed: ${(e as Error).message}`));
  });
  return {
    async attach(d) {
      daemon = d;
      if (pending) await d.shutdown(pending);
    },
  };
}
