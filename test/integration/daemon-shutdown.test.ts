/**
 * virtnetd's shutdown never hangs on the bus: SIGTERM with the bus alive, and SIGTERM after the
 * dbus-daemon is gone (dbus-next's releaseName on a closed connection never settles), both end with
 * exit code 0 within a generous bound (systemd would kill it after 90 s).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BUS_NAME,
  nameHasOwner,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';

const skip = missingPrereqs(['ip', 'dbus-daemon', 'dnsmasq', 'nft']);

describe.skipIf(skip)('virtnetd SIGTERM', () => {
  const bases: string[] = [];
  const daemons: VirtnetdProcess[] = [];
  afterAll(async () => {
    for (const d of daemons) if (!d.exited()) await d.stop('SIGKILL');
    cleanupAllNetns();
    for (const b of bases) rmSync(b, { recursive: true, force: true });
  });

  for (const busAlive of [true, false]) {
    it(`exits 0 promptly with the bus ${busAlive ? 'alive' : 'gone'}`, async () => {
      const bus = await startPrivateBus();
      const base = mkdtempSync(join(tmpdir(), 'vnet-shut-'));
      bases.push(base);
      const ns = await createNetns('vnsh');
      const daemon = await startVirtnetd({
        bus,
        configDir: join(base, 'networks'),
        stateDir: join(base, 'state'),
        runDir: join(base, 'run'),
        netns: ns.name,
      });
      daemons.push(daemon);
      expect(await nameHasOwner(bus, BUS_NAME)).toBe(true);
      if (!busAlive) {
        await bus.stop();
        await sleep(300);
      }
      const t0 = Date.now();
      const code = await daemon.stop('SIGTERM', 20_000);
      expect(code, daemon.output()).toBe(0);
      expect(Date.now() - t0).toBeLessThan(10_000);
      if (busAlive) await bus.stop();
    }, 60_000);
  }
});
