/**
 * A small process that hosts one engine, for integration tests: spawned INSIDE the test's "host"
 * namespace (`ip netns exec NS node engine-driver.js`), it takes one JSON request per stdin line and
 * answers one JSON line on stdout: `{"id":1,"op":"start","args":[net]}` → `{"id":1,"ok":true,"result":…}`.
 * The first request must be `create` (engine options). Killing this process (even with SIGKILL)
 * leaves the networks up, as a crashed daemon would.
 */
import { createInterface } from 'node:readline';
import { connectBus } from '../../src/bus/dbus.js';
import { LinuxEngine } from '../../src/engine/engine.js';
import { FirewalldZones } from '../../src/firewall/firewalld.js';
import { createLogger } from '../../src/util/log.js';

let engine: LinuxEngine | undefined;
const events: unknown[] = [];

type Req = { id: number; op: string; args?: unknown[] };

async function handle(req: Req): Promise<unknown> {
  const args = req.args ?? [];
  const a = <T = never>(i: number): T => args[i] as T;
  if (req.op === 'create') {
    // `logToStderr: LEVEL`: the engine's log (from LEVEL up) on stderr, for tests that check it.
    // `firewalldBus: ADDRESS`: firewalld zones over a connection to that bus (as virtnetd does).
    const { logToStderr, firewalldBus, ...opts } =
      a<{ logToStderr?: 'warning' | 'info'; firewalldBus?: string }>(0) ?? {};
    engine = await LinuxEngine.create({
      ...opts,
      ...(logToStderr ? { logger: createLogger({ level: logToStderr, format: 'json' }) } : {}),
    });
    if (firewalldBus) await engine.useFirewallZones(new FirewalldZones(await connectBus(firewalldBus)));
    for (const ev of [
      'started',
      'stopped',
      'updated',
      'lease-changed',
      'port-attached',
      'port-detached',
      'repaired',
    ] as const) {
      engine.on(ev, (e) => events.push({ kind: ev, ...e }));
    }
    return { backend: engine.firewallBackend, reason: engine.firewallChoice.reason };
  }
  if (!engine) throw new Error('create first');
  const e = engine;
  switch (req.op) {
    case 'start':
      return e.start(a(0));
    case 'stop':
      return e.stop(a(0));
    case 'update':
      return e.update(a(0));
    case 'adopt':
      return e.adopt(a(0) ?? []);
    case 'addHost':
      return e.addHost(a(0), a(1));
    case 'removeHost':
      return e.removeHost(a(0), a(1));
    case 'leases':
      return e.leases(a(0));
    case 'attachPort':
      return e.attachPort(a(0), a(1));
    case 'detachPort':
      return e.detachPort(a(0), a(1));
    case 'info':
      return e.info(a(0)) ?? null;
    case 'spanPeers':
      return e.spanPeers(a(0));
    case 'list':
      return e.list();
    case 'doctor':
      return e.doctor(a(0));
    case 'rebindZones':
      return e.rebindZones('asked');
    case 'checkFirewall':
      return e.checkFirewall('asked');
    case 'events':
      return events.splice(0);
    case 'timed': {
      // Time one operation inside this process: { op, args } → { ms, result }.
      const t0 = performance.now();
      const result = await handle(a<Req>(0));
      return { ms: performance.now() - t0, result };
    }
    case 'close':
      await e.close();
      return null;
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

const rl = createInterface({ input: process.stdin });
// Requests are handled one after the other, in the order they arrive.
let queue: Promise<unknown> = Promise.resolve();
rl.on('line', (line) => {
  let req: Req;
  try {
    req = JSON.parse(line) as Req;
  } catch {
    return;
  }
  queue = queue
    .then(() => handle(req))
    .then(
      (result) =>
        process.stdout.write(`${JSON.stringify({ id: req.id, ok: true, result: result ?? null })}\n`),
      (err: Error) =>
        process.stdout.write(
          `${JSON.stringify({ id: req.id, ok: false, error: err.message, errorName: err.name, step: (err as { step?: string }).step })}\n`,
        ),
    );
});
rl.on('close', () => {
  void queue.finally(() => (engine ? engine.close() : undefined)).finally(() => process.exit(0));
});
