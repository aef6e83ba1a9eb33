/**
 * GetLeasesWithDomains on a private system bus: the bus service with its real hook side
 * (createDaemonHooks: records under a run dir of the test's) and a fake engine (the lease table is
 * the test's). The owners come from hook calls made over the bus as the hook script makes them
 * (Manager.HookEvent): a domain start (qemu prepare/start) and a hot-plug (network port-created).
 * Called with busctl and dbus-send, as root and as uid 65534 (read-only: open to every user), and
 * with `virtnetctl leases` run as uid 65534, who cannot read the records itself. GetLeases is
 * unchanged (a(sssx)).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type MessageBus } from '../../src/bus/dbus.js';
import { networkCodec } from '../../src/config/codec.js';
import { ConfigStore } from '../../src/config/store.js';
import { BusAuthorizer } from '../../src/daemon/authorize.js';
import { VirtnetService } from '../../src/daemon/service.js';
import { createDaemonHooks } from '../../src/hooks/bus-adapter.js';
import { silentLogger } from '../../src/util/log.js';
import {
  BUS_NAME,
  busctl,
  execOut,
  MANAGER_IFACE,
  MANAGER_PATH,
  NETWORK_IFACE,
  NOBODY,
  type PrivateBus,
  startPrivateBus,
} from '../helpers/dbus.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';
import { FakeEngine } from './fake-engine.js';

const skip = missingPrereqs(['dbus-daemon', 'busctl', 'dbus-send', 'setpriv']);

const NET = 'lease-net';
const NET_PATH = `${MANAGER_PATH}/network/lease_2dnet`;
const NET_XML = `<network>
  <name>${NET}</name>
  <forward mode='nat'/>
  <bridge name='vh7lbr0'/>
  <ip address='10.78.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.78.0.10' end='10.78.0.50'/></dhcp>
  </ip>
</network>`;
const MAC_A = '52:54:00:78:00:0a';
const MAC_B = '52:54:00:78:00:0b';
const MAC_X = '52:54:00:78:00:99';
const UUID_A = '6d8a5a0e-0000-4000-8000-00000078000a';
const UUID_B = '6d8a5a0e-0000-4000-8000-00000078000b';

const domainA = `<domain type='qemu'><name>vm-a</name><uuid>${UUID_A}</uuid><devices>
  <interface type='bridge'><mac address='${MAC_A}'/><source bridge='vh7lbr0'/><target dev='vnet7'/></interface>
</devices></domain>`;
const portB = `<hookData><network><name>${NET}</name><forward mode='bridge'/><bridge name='vh7lbr0'/></network>
<networkport><owner><name>vm-b</name><uuid>${UUID_B}</uuid></owner><mac address='${MAC_B}'/><plug type='bridge' bridge='vh7lbr0'/></networkport></hookData>`;

describe.skipIf(skip)('GetLeasesWithDomains (private system bus, hook records)', () => {
  let bus: PrivateBus;
  let conn: MessageBus;
  let service: VirtnetService;
  let engine: FakeEngine;
  let dir: string;

  const dsend = (member: string, args: string[], asNobody = false) =>
    execOut([
      ...(asNobody ? NOBODY : []),
      'dbus-send',
      `--bus=${bus.address}`,
      '--print-reply',
      `--dest=${BUS_NAME}`,
      member.startsWith(MANAGER_IFACE) ? MANAGER_PATH : NET_PATH,
      member,
      ...args,
    ]);
  const hookEvent = (object: string, op: string, xml: string) =>
    dsend(`${MANAGER_IFACE}.HookEvent`, [
      `string:${object}`,
      `string:${op}`,
      'string:begin',
      'string:-',
      `string:${xml}`,
    ]);

  beforeAll(async () => {
    bus = await startPrivateBus();
    dir = mkdtempSync(join(tmpdir(), 'vh7-leases-'));
    chmodSync(dir, 0o755);
    conn = await connectBus(bus.address);
    engine = new FakeEngine();
    const auth = new BusAuthorizer(conn, { timeoutMs: 3000 });
    service = new VirtnetService({
      bus: conn,
      engine,
      store: new ConfigStore(join(dir, 'networks')),
      codec: networkCodec,
      authorize: (c, a, m) => auth.authorize(c, a, m),
      version: 'test',
      log: silentLogger(),
      hooks: createDaemonHooks({ engine, runDir: join(dir, 'run'), log: silentLogger() }),
    });
    await conn.requestName(BUS_NAME, 4);
    await service.start();
    const def = await dsend(`${MANAGER_IFACE}.DefineNetwork`, [`string:${NET_XML}`]);
    expect(def.code, def.stderr).toBe(0);
  });

  afterAll(async () => {
    await service?.close();
    conn?.disconnect();
    await bus?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('empty while the network is not active', async () => {
    const r = await busctl(bus, [
      '--json=short',
      'call',
      BUS_NAME,
      NET_PATH,
      NETWORK_IFACE,
      'GetLeasesWithDomains',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ type: 'a(sssxs)', data: [[]] });
  });

  it('names the domain of each lease from the hook records: a domain start and a hot-plug; unknown is empty', async () => {
    const st = await dsend(`${NETWORK_IFACE}.Start`, []);
    expect(st.code, st.stderr).toBe(0);
    for (const op of ['prepare', 'start']) {
      const r = await hookEvent('vm-a', op, domainA);
      expect(r.code, `${op}: ${r.stderr}`).toBe(0);
    }
    const hp = await hookEvent(NET, 'port-created', portB);
    expect(hp.code, hp.stderr).toBe(0);
    // The hook side did its part on the engine: both NICs have their name.
    expect(engine.info(NET)?.extraHosts).toEqual([
      { mac: MAC_A, hostname: 'vm-a' },
      { mac: MAC_B, hostname: 'vm-b' },
    ]);
    engine.leaseTable.set(NET, [
      { mac: MAC_A, ip: '10.78.0.11', hostname: 'vm-a', expiry: 1900000000 },
      { mac: MAC_B.toUpperCase(), ip: '10.78.0.12', hostname: '', expiry: 0 },
      { mac: MAC_X, ip: '10.78.0.13', hostname: 'stray', expiry: 0 },
    ]);

    const r = await busctl(bus, [
      '--json=short',
      'call',
      BUS_NAME,
      NET_PATH,
      NETWORK_IFACE,
      'GetLeasesWithDomains',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      type: 'a(sssxs)',
      data: [
        [
          [MAC_A, '10.78.0.11', 'vm-a', 1900000000, 'vm-a'],
          [MAC_B.toUpperCase(), '10.78.0.12', '', 0, 'vm-b'],
          [MAC_X, '10.78.0.13', 'stray', 0, ''],
        ],
      ],
    });
    // GetLeases is what it was.
    const old = await busctl(bus, ['--json=short', 'call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'GetLeases']);
    expect(JSON.parse(old.stdout).type).toBe('a(sssx)');
    expect(JSON.parse(old.stdout).data[0]).toHaveLength(3);

    // Read-only: any local user may ask (dbus-send as uid 65534).
    const nobody = await dsend(`${NETWORK_IFACE}.GetLeasesWithDomains`, [], true);
    expect(nobody.code, nobody.stderr).toBe(0);
    expect(nobody.stdout).toContain('string "vm-b"');
    expect(nobody.stdout).toMatch(/int64 1900000000\s+string "vm-a"/);
  });

  it('virtnetctl leases as uid 65534 shows the domains (the records are root-only; the daemon reads them)', async () => {
    const cli = join(projectRoot, 'src', 'bin', 'virtnetctl.ts');
    const register = join(projectRoot, 'test', 'helpers', 'ts-register.mjs');
    const env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: bus.address, VIRTNET_RUN_DIR: join(dir, 'run') };
    const own = await execOut([...NOBODY, 'ls', join(dir, 'run', 'hooks', 'domains')], { env });
    expect(own.code).not.toBe(0); // nobody cannot read them
    const r = await execOut([...NOBODY, 'node', '--import', register, cli, 'leases', NET], {
      env,
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      'MAC                IP          HOSTNAME  DOMAIN  EXPIRES\n' +
        `${MAC_A}  10.78.0.11  vm-a      vm-a    2030-03-17 17:46:40Z\n` +
        `${MAC_B.toUpperCase()}  10.78.0.12  -         vm-b    never\n` +
        `${MAC_X}  10.78.0.13  stray     -       never\n`,
    );
  });
});
