/**
 * The in-process fallback: what hooks/qemu and hooks/network run when no virtnet daemon answers on the
 * bus — `node main.js KIND OBJECT OPERATION SUB-OPERATION EXTRA` with the XML on stdin. It runs the
 * SAME handler as the daemon (handler.ts) with an engine of its own that adopts the running networks
 * from the run dir (the state the daemon left), and the same records and locks under
 * `<run dir>/hooks/`.
 *
 * - A domain with nothing on virtnet (and no record) returns before any engine is built; so does a
 *   network `port-created`/`port-deleted` that is not a hot-plug on a virtnet network.
 * - Fallback processes serialize on one cross-process lock (adopting is not done twice at once);
 *   the handler's own locks order them against a daemon that comes up meanwhile.
 * - Exit: 0, or 1 only for a failed qemu prepare/start (the domain must not start), with one line on
 *   stderr; 2 for a call that is not libvirt's (wrong arguments). Bounded by VIRTNET_HOOK_TIMEOUT_MS
 *   (default 60 s) overall.
 *
 * Environment (libvirt clears it; these are for tests and unusual layouts): VIRTNET_CONFIG_DIR
 * (default /etc/virtnet/networks), VIRTNET_RUN_DIR (default /run/virtnet), VIRTNET_FIREWALL
 * (auto|nftables|iptables), VIRTNET_LOG_LEVEL.
 */
import { pathToFileURL } from 'node:url';
import { networkCodec } from '../config/codec.js';
import { ConfigStore } from '../config/store.js';
import type { LinuxEngine } from '../engine/engine.js';
import { ValidationError } from '../errors.js';
import type { FirewallRequest } from '../firewall/detect.js';
import { parseDomainXml, parseNetworkHookData } from '../model/domain.js';
import type { Network } from '../model/network.js';
import { actionFor, blocksStart, type HookKind, isHookKind, parseHookArgs } from './args.js';
import type { HookContext } from './context.js';
import { describeFailure, handleHookEvent } from './handler.js';
import { LockManager } from './lock.js';
import { planHotplug } from './plan-hotplug.js';
import { planPorts } from './plan-ports.js';
import { domainKey, FileRecordStore, hookPaths } from './records.js';

export interface HookMainResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface HookMainEnv {
  VIRTNET_CONFIG_DIR?: string;
  VIRTNET_RUN_DIR?: string;
  VIRTNET_FIREWALL?: string;
  VIRTNET_LOG_LEVEL?: string;
}

/** Every defined network, as the daemon would load it (files that do not parse are skipped). */
async function loadNetworks(configDir: string): Promise<Network[]> {
  const { files } = await new ConfigStore(configDir).readAll();
  const nets: Network[] = [];
  for (const f of files) {
    try {
      const { network } = networkCodec.parse(f.xml, {
        usedBridges: nets.flatMap((n) => n.bridge.name ?? []),
      });
      if (network.name === f.stem) nets.push(network);
    } catch {
      // invalid files are the daemon's to report
    }
  }
  return nets;
}

/** Run one hook call. Never throws. */
export async function runHook(
  argv: readonly string[],
  xml: string,
  env: HookMainEnv = {},
): Promise<HookMainResult> {
  const [kindArg, ...rest] = argv;
  if (!kindArg || !isHookKind(kindArg))
    return {
      code: 2,
      stdout: '',
      stderr: `virtnet hook: first argument must be qemu or network, got '${kindArg ?? ''}'\n`,
    };
  const kind: HookKind = kindArg;
  let args: ReturnType<typeof parseHookArgs>;
  try {
    args = parseHookArgs(kind, rest);
  } catch (e) {
    return { code: 2, stdout: '', stderr: `${describeFailure(kind, rest[0] ?? '', rest[1] ?? '', e)}\n` };
  }
  const fail = (e: unknown): HookMainResult => ({
    code: blocksStart(kind, args.operation) ? 1 : 0,
    stdout: '',
    stderr: `${describeFailure(kind, args.object, args.operation, e)}\n`,
  });
  const action = actionFor(kind, args.operation);
  if (action === 'ignore') return { code: 0, stdout: '', stderr: '' };
  if (action === 'passthrough') return { code: 0, stdout: xml, stderr: '' };

  const configDir = env.VIRTNET_CONFIG_DIR || '/etc/virtnet/networks';
  const runDir = env.VIRTNET_RUN_DIR || '/run/virtnet';
  const paths = hookPaths(runDir);
  const records = new FileRecordStore(paths.records);
  const locks = new LockManager({ dir: paths.locks });
  let engine: LinuxEngine | undefined;
  try {
    const networks = await loadNetworks(configDir);
    // Cheap exits: nothing of virtnet's in this call.
    if (kind === 'qemu') {
      const domain = parseDomainXml(xml);
      const ports = planPorts(domain, networks);
      if (!ports.length && !(await records.get(domainKey(domain))))
        return { code: 0, stdout: '', stderr: '' };
    } else if (args.operation === 'port-created' || args.operation === 'port-deleted') {
      // A NIC hot-plugged into / out of a running domain on a virtnet network; at every domain start
      // and stop these come too, and then there is nothing to do here (the qemu hook's calls do it).
      const data = parseNetworkHookData(xml);
      const owner = data.port?.owner;
      const rec = owner ? await records.get(domainKey({ name: owner.name, uuid: owner.uuid })) : undefined;
      if (planHotplug(args.operation, data, networks, rec).action === 'none')
        return { code: 0, stdout: '', stderr: '' };
    } else if (args.operation !== 'started') {
      // Other network operations only produce bus events, and there is no bus here.
      parseNetworkHookData(xml);
      return { code: 0, stdout: '', stderr: '' };
    }
    // The engine and the firewall only now (their imports cost more than everything above).
    const [
      { LinuxEngine },
      { makeFirewall },
      { createRunner },
      { FirewallForwarder },
      { createLogger, isLogLevel },
    ] = await Promise.all([
      import('../engine/engine.js'),
      import('../firewall/detect.js'),
      import('../exec/runner.js'),
      import('./forwarder.js'),
      import('../util/log.js'),
    ]);
    const level = env.VIRTNET_LOG_LEVEL;
    const log = createLogger({ level: level && isLogLevel(level) ? level : 'warning' });
    const firewall = (env.VIRTNET_FIREWALL as FirewallRequest | undefined) || 'auto';
    return await locks.withLocks(['fallback'], async () => {
      engine = await LinuxEngine.create({ runDir, firewall, logger: log });
      await engine.adopt(networks);
      // The running bridge is the engine's (a definition without <bridge name> got one at start).
      const live = networks.map((n) => {
        const info = engine!.info(n.name);
        return info && info.bridge !== n.bridge.name
          ? { ...n, bridge: { ...n.bridge, name: info.bridge } }
          : n;
      });
      const ctx: HookContext = {
        networks: () => live,
        engine,
        forwarder: new FirewallForwarder({
          firewall: makeFirewall(createRunner(), { backend: engine.firewallBackend, reason: 'engine' }),
          networks: () => live,
          log,
        }),
        records,
        locks,
        emit: (event, payload) =>
          log.debug(`event ${event} ${JSON.stringify(payload)} (no daemon: not signalled)`),
        log,
      };
      const out = await handleHookEvent(ctx, { ...args, xml });
      return { code: 0, stdout: out, stderr: '' };
    });
  } catch (e) {
    return fail(e instanceof ValidationError || e instanceof Error ? e : new Error(String(e)));
  } finally {
    await (engine as LinuxEngine | undefined)?.close().catch(() => {});
  }
}

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const kind = argv[0] ?? 'hook';
  const op = argv[2] ?? '';
  const limit = Number(process.env.VIRTNET_HOOK_TIMEOUT_MS) || 60_000;
  const timer = setTimeout(() => {
    process.stderr.write(
      `virtnet: ${kind} ${argv[1] ?? ''} ${op}: not done within ${limit} ms (in-process, no daemon); giving up\n`,
    );
    process.exit(kind === 'qemu' && (op === 'prepare' || op === 'start') ? 1 : 0);
  }, limit);
  const xml = await readStdin();
  const r = await runHook(argv, xml, process.env);
  clearTimeout(timer);
  if (r.stdout) process.stdout.write(r.stdout);
  if (r.stderr) process.stderr.write(r.stderr);
  // Exit now: an adopted dnsmasq supervisor or a bus socket must not keep libvirt waiting.
  process.exit(r.code);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    process.stderr.write(`virtnet: hook: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
