/**
 * A small process that hosts one engine, for integration tests: spawned INSIDE the test's "host"
 * namespace (`ip netns exec NS node engine-driver.js`), it takes one JSON request per stdin line and
 * answers one JSON line on stdout: `{"id":1,"op":"start","args":[net]}` → `{"id":1,"ok":true,"result":…}`.
 * The first request must be `create` (engine options). Killing this process (even with SIGKILL)
 * leaves the networks up, as a crashed daemon would.
 */
import { createInterface } from 'node:readline';
import { LinuxEngine } from '../../src/engine/engine.js';

let engine: LinuxEngine | undefined;
const events: unknown[] = [];

type Req = { id: number; op: string; args?: unknown[] };

async function handle(req: Req): Promise<unknown> {
  const args = req.args ?? [];
  const a = <T = never>(i: number): T => args[i] as T;
  if (req.op === 'create') {
    engine = await LinuxEngine.create(a(0) ?? {});
    for (const ev of [
      'started',
      'stopped',
      'updated',
      'lease-changed',
      'port-attached',
      'port-detached',
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
