/**
 * `virtnetctl leases` against a daemon that predates GetLeasesWithDomains (an upgrade with the old
 * daemon still running): on a private system bus, an object tree served by the daemon's own
 * dispatcher (BusObjects) with the Network interface as it was — GetLeases only. The bus then answers
 * UnknownMethod, and the CLI names the owners from the hook records it can read itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUS_NAME, managerInterface, networkInterface } from '../../../src/bus/api.js';
import { connectBus, type MessageBus } from '../../../src/bus/dbus.js';
import { MANAGER_PATH, networkPath } from '../../../src/bus/path-encode.js';
import { main } from '../../../src/cli/main.js';
import { BusObjects } from '../../../src/daemon/bus-objects.js';
import { FileRecordStore, hookPaths } from '../../../src/hooks/records.js';
import { busctl, type PrivateBus, startPrivateBus } from '../../helpers/dbus.js';
import { missingPrereqs } from '../../helpers/require.js';
import { captureIo } from '../io.js';

const skip = missingPrereqs(['dbus-daemon', 'busctl'], { root: false });

describe.skipIf(skip)('virtnetctl leases with a daemon without GetLeasesWithDomains', () => {
  let bus: PrivateBus;
  let conn: MessageBus;
  let dir: string;
  const path = networkPath('old-net');

  beforeAll(async () => {
    bus = await startPrivateBus();
    dir = mkdtempSync(join(tmpdir(), 'vh7-oldd-'));
    conn = await connectBus(bus.address);
    const objects = new BusObjects(conn, { objectManagerPath: MANAGER_PATH, authorize: async () => {} });
    objects.add(MANAGER_PATH, [
      {
        spec: managerInterface,
        get: () => 'old',
        call: (m, args) => {
          if (m === 'GetNetworkByName' && args[0] === 'old-net') return [path];
          throw new Error(`unexpected ${m}`);
        },
      },
    ]);
    objects.add(path, [
      {
        spec: {
          ...networkInterface,
          methods: networkInterface.methods.filter((m) => m.name !== 'GetLeasesWithDomains'),
        },
        get: (p) => (p === 'Active' || p === 'Autostart' ? true : p === 'Name' ? 'old-net' : ''),
        call: (m) => {
          if (m === 'GetLeases')
            return [
              [
                ['52:54:00:01:02:03', '10.79.0.11', 'g', 0n],
                ['52:54:00:01:02:04', '10.79.0.12', '', 0n],
              ],
            ];
          throw new Error(`unexpected ${m}`);
        },
      },
    ]);
    expect(await conn.requestName(BUS_NAME, 4)).toBe(1);
    await new FileRecordStore(hookPaths(join(dir, 'run')).records).put({
      version: 1,
      domain: 'vm-a',
      uuid: '6d8a5a0e-0000-4000-8000-000000000001',
      phase: 'started',
      ports: [{ index: 0, kind: 'bridge', network: 'old-net', mac: '52:54:00:01:02:03', forwards: [] }],
      updatedAt: '',
    });
  });

  afterAll(async () => {
    conn?.disconnect();
    await bus?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the old daemon answers UnknownMethod; the CLI falls back to GetLeases and the local records', async () => {
    const r = await busctl(bus, ['call', BUS_NAME, path, networkInterface.name, 'GetLeasesWithDomains']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/GetLeasesWithDomains/);
    const io = captureIo();
    io.env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address, VIRTNET_RUN_DIR: join(dir, 'run') };
    expect(await main(['leases', 'old-net'], io), io.err).toBe(0);
    expect(io.out).toBe(
      'MAC                IP          HOSTNAME  DOMAIN  EXPIRES\n' +
        '52:54:00:01:02:03  10.79.0.11  g         vm-a    never\n' +
        '52:54:00:01:02:04  10.79.0.12  -         -       never\n',
    );
  });
});
