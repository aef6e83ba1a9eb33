/**
 * virtnetd tells systemd it is ready: with NOTIFY_SOCKET set (here a datagram socket the test listens
 * on, as systemd would), it sends READY=1 with MAINPID = the daemon's pid once it serves the bus,
 * WATCHDOG=1 at half of WATCHDOG_USEC, and STOPPING=1 on SIGTERM (networks stay up).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type PrivateBus, startPrivateBus, startVirtnetd, type VirtnetdProcess } from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';

const skip = missingPrereqs(['ip', 'dbus-daemon', 'busctl', 'python3', 'systemd-notify', 'nft']);

// A stand-in for systemd's notification socket: prints each datagram as one JSON line.
const LISTENER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("listening"), flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

describe.skipIf(skip)('sd_notify READY=1, watchdog and STOPPING=1 (real daemon)', () => {
  let bus: PrivateBus | undefined;
  let listener: ChildProcess | undefined;
  let daemon: VirtnetdProcess | undefined;
  const base = mkdtempSync(join(tmpdir(), 'vh7-notify-'));
  chmodSync(base, 0o755);

  afterAll(async () => {
    await daemon?.stop('SIGKILL');
    listener?.kill('SIGKILL');
    cleanupAllNetns();
    await bus?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('notifies systemd', async () => {
    bus = await startPrivateBus();
    const ns = await createNetns('vh7-n');
    const sock = join(base, 'notify.sock');
    const got: string[] = [];
    listener = spawn('python3', ['-c', LISTENER, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    listener.stdout!.on('data', (d) => {
      buf += String(d);
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) got.push(JSON.parse(l) as string);
    });
    for (let i = 0; i < 100 && !got.includes('listening'); i++) await sleep(50);
    expect(got).toContain('listening');

    daemon = await startVirtnetd({
      bus,
      configDir: join(base, 'networks'),
      stateDir: join(base, 'state'),
      runDir: join(base, 'run'),
      netns: ns.name,
      env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '400000' },
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && got.filter((m) => m.includes('WATCHDOG=1')).length < 2) await sleep(50);
    const ready = got.find((m) => m.includes('READY=1'));
    expect(ready, JSON.stringify(got)).toBeDefined();
    expect(ready).toContain(`MAINPID=${daemon.pid}`);
    expect(got.filter((m) => m.includes('WATCHDOG=1')).length).toBeGreaterThanOrEqual(2);
    expect(await daemon.stop('SIGTERM')).toBe(0);
    await sleep(200);
    expect(
      got.some((m) => m.includes('STOPPING=1')),
      JSON.stringify(got),
    ).toBe(true);
  });
});
