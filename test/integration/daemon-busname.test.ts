/**
 * virtnetd writes its unique bus name to RUN_DIR/daemon.busname while it owns org.virtnet.network1, and
 * the hook program sends its event straight there: one bus round trip per hook call (no NameHasOwner),
 * and never an activation. The file goes at shutdown.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUS_NAME, busctl, startMonitor, startPrivateBus, startVirtnetd } from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const skip = missingPrereqs(['ip', 'dbus-daemon', 'dbus-send', 'busctl', 'dnsmasq', 'nft']);
const PLAIN = "<domain type='qemu'>\n  <name>plain</name>\n  <devices/>\n</domain>\n";

describe.skipIf(skip)('virtnetd daemon.busname', () => {
  const base = mkdtempSync(join(tmpdir(), 'vnet-busname-'));
  afterAll(() => {
    cleanupAllNetns();
    rmSync(base, { recursive: true, force: true });
  });

  it('holds the owner of org.virtnet.network1; the hook talks to it without asking the bus; gone at SIGTERM', async () => {
    const bus = await startPrivateBus();
    const ns = await createNetns('vnbn');
    const runDir = join(base, 'run');
    const daemon = await startVirtnetd({
      bus,
      configDir: join(base, 'networks'),
      stateDir: join(base, 'state'),
      runDir,
      netns: ns.name,
    });
    try {
      const owner = await busctl(bus, [
        'call',
        'org.freedesktop.DBus',
        '/org/freedesktop/DBus',
        'org.freedesktop.DBus',
        'GetNameOwner',
        's',
        BUS_NAME,
      ]);
      const unique = /"(:[\d.]+)"/.exec(owner.stdout)?.[1];
      expect(unique).toBeTruthy();
      expect(readFileSync(join(runDir, 'daemon.busname'), 'utf8')).toBe(`${unique}\n`);

      const mon = await startMonitor(bus);
      const r = spawnSync(join(projectRoot, 'hooks', 'qemu'), ['plain', 'prepare', 'begin', '-'], {
        input: PLAIN,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, DBUS_SYSTEM_BUS_ADDRESS: bus.address, VIRTNET_RUN_DIR: runDir },
      });
      expect(r.status, r.stderr).toBe(0);
      await mon.waitFor((m) => m.member === 'HookEvent' && m.destination === unique);
      await mon.stop();
      expect(mon.messages().some((m) => m.member === 'HookEvent')).toBe(true);
      expect(mon.messages().filter((m) => m.member === 'NameHasOwner')).toEqual([]);

      expect(await daemon.stop('SIGTERM')).toBe(0);
      expect(existsSync(join(runDir, 'daemon.busname'))).toBe(false);
    } finally {
      if (!daemon.exited()) await daemon.stop('SIGKILL');
      await bus.stop();
    }
  }, 60_000);
});
