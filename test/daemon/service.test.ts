import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTION_MANAGE } from '../../src/bus/api.js';
import {
  connectBus,
  type Message,
  type MessageBus,
  MessageType,
  Message as Msg,
} from '../../src/bus/dbus.js';
import { networkCodec } from '../../src/config/codec.js';
import { ConfigStore } from '../../src/config/store.js';
import { BusAuthorizer } from '../../src/daemon/authorize.js';
import { type ServiceOptions, VirtnetService } from '../../src/daemon/service.js';
import { CommandError } from '../../src/errors.js';
import { silentLogger } from '../../src/util/log.js';
import {
  BUS_NAME,
  busctl,
  execOut,
  MANAGER_IFACE,
  MANAGER_PATH,
  type Monitor,
  NETWORK_IFACE,
  NOBODY,
  type PrivateBus,
  startMonitor,
  startPrivateBus,
} from '../helpers/dbus.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';
import { treeHash } from '../helpers/tree.js';
import { FakeEngine } from './fake-engine.js';
import { interfacesOf } from './introspection-xml.js';

const skip = missingPrereqs(['dbus-daemon', 'busctl', 'dbus-send', 'setpriv']);

const NET_XML = `<network>
  <name>my-net</name>
  <forward mode='nat'/>
  <bridge name='vh7br0'/>
  <ip address='10.77.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.77.0.10' end='10.77.0.50'/></dhcp>
  </ip>
</network>`;
const NET_PATH = `${MANAGER_PATH}/network/my_2dnet`;

/** dbus-send a call; returns { ok, errorName, text }. */
async function dsend(bus: PrivateBus, path: string, member: string, args: string[] = [], asNobody = false) {
  const argv = [
    'dbus-send',
    `--bus=${bus.address}`,
    '--print-reply',
    `--dest=${BUS_NAME}`,
    path,
    member,
    ...args,
  ];
  const r = await execOut(asNobody ? [...NOBODY, ...argv] : argv);
  const m = /^Error ([\w.]+): (.*)$/ms.exec(r.stderr.trim());
  return {
    ok: r.code === 0,
    errorName: m?.[1],
    text: m?.[2] ?? r.stdout,
    stdout: r.stdout,
    stderr: r.stderr,
  };
}

describe.skipIf(skip)('virtnetd bus service (private system bus, fake engine)', () => {
  let bus: PrivateBus;
  let conn: MessageBus;
  let service: VirtnetService;
  let engine: FakeEngine;
  let configDir: string;
  let mon: Monitor;

  beforeAll(async () => {
    bus = await startPrivateBus({
      // Lets the test own a fake polkit (see the polkit test); the daemon may talk to it.
      extraPolicy: `<policy user="root"><allow own="org.freedesktop.PolicyKit1"/><allow send_destination="org.freedesktop.PolicyKit1"/></policy>`,
    });
    configDir = mkdtempSync(join(tmpdir(), 'vh7-conf-'));
    conn = await connectBus(bus.address);
    engine = new FakeEngine();
    const authorizer = new BusAuthorizer(conn, { timeoutMs: 3000 });
    service = new VirtnetService({
      bus: conn,
      engine,
      store: new ConfigStore(configDir),
      codec: networkCodec,
      authorize: (ctx, action, m) => authorizer.authorize(ctx, action, m),
      version: '9.9.9-test',
      log: silentLogger(),
    });
    expect(await conn.requestName(BUS_NAME, 4)).toBe(1);
    await service.start();
    mon = await startMonitor(bus);
  });

  afterAll(async () => {
    await mon?.stop();
    await service?.close();
    conn?.disconnect();
    await bus?.stop();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it('live introspection equals the interface files in dbus/', async () => {
    const managerFile = interfacesOf(readFileSync(join(projectRoot, 'dbus', `${MANAGER_IFACE}.xml`), 'utf8'));
    const live = await busctl(bus, ['introspect', '--xml-interface', BUS_NAME, MANAGER_PATH]);
    expect(live.code, live.stderr).toBe(0);
    const liveIfaces = interfacesOf(live.stdout);
    expect(liveIfaces[MANAGER_IFACE]).toEqual(managerFile[MANAGER_IFACE]);
    expect(Object.keys(liveIfaces)).toContain('org.freedesktop.DBus.ObjectManager');

    await dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [`string:${NET_XML}`]);
    const networkFile = interfacesOf(readFileSync(join(projectRoot, 'dbus', `${NETWORK_IFACE}.xml`), 'utf8'));
    const liveNet = await busctl(bus, ['introspect', '--xml-interface', BUS_NAME, NET_PATH]);
    expect(liveNet.code, liveNet.stderr).toBe(0);
    expect(interfacesOf(liveNet.stdout)[NETWORK_IFACE]).toEqual(networkFile[NETWORK_IFACE]);
    // The files document every member (a comment precedes each method, signal and property).
    for (const f of [`${MANAGER_IFACE}.xml`, `${NETWORK_IFACE}.xml`]) {
      const text = readFileSync(join(projectRoot, 'dbus', f), 'utf8');
      for (const m of text.matchAll(/<(method|signal|property) name="(\w+)"/g)) {
        const before = text.slice(0, m.index).trimEnd();
        expect(before.endsWith('-->'), `${f}: ${m[1]} ${m[2]} is documented`).toBe(true);
      }
    }
  });

  it('DefineNetwork wrote the file atomically and announced the network', async () => {
    expect(existsSync(join(configDir, 'my-net.xml'))).toBe(true);
    expect(readdirSync(configDir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await mon.waitFor(
      (m) => m.member === 'InterfacesAdded' && (m.payload as { data: unknown[] }).data[0] === NET_PATH,
    );
    await mon.waitFor(
      (m) =>
        m.member === 'NetworkEvent' &&
        JSON.stringify((m.payload as { data: unknown[] }).data) ===
          JSON.stringify(['my-net', NET_PATH, 'defined']),
    );
    const list = await busctl(bus, [
      '--json=short',
      'call',
      BUS_NAME,
      MANAGER_PATH,
      MANAGER_IFACE,
      'ListNetworks',
    ]);
    expect(JSON.parse(list.stdout).data).toEqual([[NET_PATH]]);
    const byName = await busctl(bus, [
      'call',
      BUS_NAME,
      MANAGER_PATH,
      MANAGER_IFACE,
      'GetNetworkByName',
      's',
      'my-net',
    ]);
    expect(byName.stdout.trim()).toBe(`o "${NET_PATH}"`);
    const props = await busctl(bus, [
      '--json=short',
      'call',
      BUS_NAME,
      NET_PATH,
      'org.freedesktop.DBus.Properties',
      'GetAll',
      's',
      NETWORK_IFACE,
    ]);
    const data = JSON.parse(props.stdout).data[0];
    expect(data.Name.data).toBe('my-net');
    expect(data.Active.data).toBe(false);
    expect(data.Autostart.data).toBe(false);
    expect(data.Bridge.data).toBe('vh7br0');
    expect(data.ForwardMode.data).toBe('nat');
    expect(data.UUID.data).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const xml = await busctl(bus, ['--json=short', 'call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'GetXML']);
    const got = JSON.parse(xml.stdout).data[0] as string;
    expect(got).toContain(`<uuid>${data.UUID.data}</uuid>`);
    expect(readFileSync(join(configDir, 'my-net.xml'), 'utf8')).toBe(got);
    const ver = await busctl(bus, ['get-property', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'Version']);
    expect(ver.stdout.trim()).toBe('s "9.9.9-test"');
  });

  it('GetManagedObjects lists the network with its properties', async () => {
    const r = await busctl(bus, [
      '--json=short',
      'call',
      BUS_NAME,
      MANAGER_PATH,
      'org.freedesktop.DBus.ObjectManager',
      'GetManagedObjects',
    ]);
    const objs = JSON.parse(r.stdout).data[0];
    expect(Object.keys(objs)).toEqual([NET_PATH]);
    expect(objs[NET_PATH][NETWORK_IFACE].Name.data).toBe('my-net');
  });

  it('redefining keeps the uuid; a different uuid is a Conflict and changes nothing', async () => {
    const before = readFileSync(join(configDir, 'my-net.xml'), 'utf8');
    const uuid = /<uuid>(.*)<\/uuid>/.exec(before)![1]!;
    const again = await dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [`string:${NET_XML}`]);
    expect(again.ok, again.stderr).toBe(true);
    expect(readFileSync(join(configDir, 'my-net.xml'), 'utf8')).toContain(`<uuid>${uuid}</uuid>`);
    const snap = treeHash(configDir);
    const other = NET_XML.replace('<forward', '<uuid>11111111-2222-3333-4444-555555555555</uuid><forward');
    const r = await dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [`string:${other}`]);
    expect(r.errorName).toBe('org.virtnet.network1.Error.Conflict');
    expect(r.text).toContain(uuid);
    // Another network taking the same bridge: Conflict.
    const clash = NET_XML.replace('my-net', 'other-net');
    const c = await dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [`string:${clash}`]);
    expect(c.errorName).toBe('org.virtnet.network1.Error.Conflict');
    expect(c.text).toMatch(/bridge 'vh7br0' is already used by network 'my-net'/);
    expect(treeHash(configDir)).toBe(snap);
  });

  it('redefining with another bridge and mode announces PropertiesChanged(Bridge, ForwardMode)', async () => {
    const changed = NET_XML.replace("<forward mode='nat'/>", "<forward mode='route'/>").replace(
      'vh7br0',
      'vh7br3',
    );
    const r = await dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [`string:${changed}`]);
    expect(r.ok, r.stderr).toBe(true);
    await mon.waitFor(
      (m) =>
        m.member === 'PropertiesChanged' &&
        m.path === NET_PATH &&
        JSON.stringify(m.payload).includes('"Bridge":{"type":"s","data":"vh7br3"}') &&
        JSON.stringify(m.payload).includes('"ForwardMode":{"type":"s","data":"route"}'),
    );
    const back = await dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [`string:${NET_XML}`]);
    expect(back.ok, back.stderr).toBe(true);
    expect(
      (await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Bridge'])).stdout.trim(),
    ).toBe('s "vh7br0"');
  });

  it('Start emits PropertiesChanged(Active) and NetworkEvent started; a second Start is a Conflict', async () => {
    const r = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Start']);
    expect(r.code, r.stderr).toBe(0);
    expect(engine.calls).toContain('start my-net');
    await mon.waitFor(
      (m) =>
        m.member === 'PropertiesChanged' &&
        m.path === NET_PATH &&
        JSON.stringify(m.payload).includes('"Active":{"type":"b","data":true}'),
    );
    await mon.waitFor((m) => m.member === 'NetworkEvent' && JSON.stringify(m.payload).includes('"started"'));
    // Exactly one PropertiesChanged for Active=true (engine event + our own sync do not double it).
    const pcs = mon
      .messages()
      .filter((m) => m.member === 'PropertiesChanged' && JSON.stringify(m.payload).includes('"Active"'));
    expect(pcs).toHaveLength(1);
    const again = await dsend(bus, NET_PATH, `${NETWORK_IFACE}.Start`);
    expect(again.errorName).toBe('org.virtnet.network1.Error.Conflict');
    expect(again.text).toMatch(/already active/);
  });

  it("an engine repair (lost rules put back) becomes NetworkEvent 'repaired' on the network's path", async () => {
    engine.emit('repaired', { name: 'my-net', missing: ['own nftables rules absent'] });
    await mon.waitFor(
      (m) =>
        m.member === 'NetworkEvent' &&
        JSON.stringify(m.payload).includes('"repaired"') &&
        JSON.stringify(m.payload).includes(NET_PATH),
    );
  });

  it('engine lease events become LeaseChanged; GetLeases returns a(sssx)', async () => {
    engine.leaseTable.set('my-net', [
      { mac: '52:54:00:aa:bb:cc', ip: '10.77.0.20', hostname: 'g1', expiry: 1900000000 },
    ]);
    engine.emit('lease-changed', {
      name: 'my-net',
      event: 'added',
      mac: '52:54:00:aa:bb:cc',
      ip: '10.77.0.20',
      hostname: 'g1',
    });
    await mon.waitFor(
      (m) =>
        m.member === 'LeaseChanged' &&
        m.path === NET_PATH &&
        JSON.stringify(m.payload).includes('10.77.0.20'),
    );
    const r = await busctl(bus, ['--json=short', 'call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'GetLeases']);
    expect(JSON.parse(r.stdout)).toEqual({
      type: 'a(sssx)',
      data: [[['52:54:00:aa:bb:cc', '10.77.0.20', 'g1', 1900000000]]],
    });
    engine.emit('port-attached', {
      name: 'my-net',
      ifname: 'vnet7',
      mac: '52:54:00:aa:bb:cc',
      domain: 'vm1',
    });
    await mon.waitFor((m) => m.member === 'PortAttached' && JSON.stringify(m.payload).includes('vnet7'));
  });

  it('AddHost/RemoveHost reach the engine; a host outside the subnet is InvalidArgument', async () => {
    const ok = await dsend(bus, NET_PATH, `${NETWORK_IFACE}.AddHost`, [
      'string:52:54:00:00:00:01',
      'string:10.77.0.30',
      'string:web',
    ]);
    expect(ok.ok, ok.stderr).toBe(true);
    expect(engine.calls).toContain('addHost my-net 52:54:00:00:00:01 10.77.0.30 web');
    const dup = await dsend(bus, NET_PATH, `${NETWORK_IFACE}.AddHost`, [
      'string:52:54:00:00:00:01',
      'string:10.77.0.31',
      'string:',
    ]);
    expect(dup.errorName).toBe('org.virtnet.network1.Error.Conflict');
    const out = await dsend(bus, NET_PATH, `${NETWORK_IFACE}.AddHost`, [
      'string:52:54:00:00:00:02',
      'string:192.168.5.5',
      'string:x',
    ]);
    expect(out.errorName).toBe('org.virtnet.network1.Error.InvalidArgument');
    expect(out.text).toMatch(
      /ip: outside the network's IPv4 subnet\(s\) 10\.77\.0\.1\/24 \(value "192\.168\.5\.5"\)/,
    );
    const rm = await dsend(bus, NET_PATH, `${NETWORK_IFACE}.RemoveHost`, ['string:52:54:00:00:00:01']);
    expect(rm.ok, rm.stderr).toBe(true);
    expect(engine.calls).toContain('removeHost my-net 52:54:00:00:00:01');
  });

  it('Update is virsh net-update: stored, applied live on the active network, libvirt errors', async () => {
    const before = engine.calls.filter((c) => c === 'update my-net').length;
    const upd = (section: string, command: string, xml: string, parent = -1) =>
      dsend(bus, NET_PATH, `${NETWORK_IFACE}.Update`, [
        `string:${section}`,
        `string:${command}`,
        `int32:${parent}`,
        `string:${xml}`,
      ]);
    const add = await upd(
      'ip-dhcp-host',
      'add-last',
      "<host mac='52:54:00:00:00:09' name='db' ip='10.77.0.9'/>",
    );
    expect(add.ok, add.stderr).toBe(true);
    expect(readFileSync(join(configDir, 'my-net.xml'), 'utf8')).toMatch(
      /<host mac=['"]52:54:00:00:00:09['"] name=['"]db['"] ip=['"]10\.77\.0\.9['"]\s*\/>/,
    );
    expect(engine.calls.filter((c) => c === 'update my-net').length).toBe(before + 1);
    await mon.waitFor(
      (m) =>
        m.member === 'NetworkEvent' &&
        JSON.stringify((m.payload as { data: unknown[] }).data) ===
          JSON.stringify(['my-net', NET_PATH, 'updated']),
    );
    const dup = await upd('ip-dhcp-host', 'add-last', "<host mac='52:54:00:00:00:09' ip='10.77.0.11'/>");
    expect(dup.errorName).toBe('org.virtnet.network1.Error.Conflict');
    const snap = treeHash(configDir);
    const missing = await upd('dns-host', 'delete', "<host ip='10.77.0.99'><hostname>nope</hostname></host>");
    expect(missing.errorName).toBe('org.virtnet.network1.Error.NotFound');
    const badSection = await upd('bogus', 'add-last', '<host/>');
    expect(badSection.errorName).toBe('org.virtnet.network1.Error.InvalidArgument');
    expect(badSection.text).toMatch(/section.*bogus/);
    const outside = await upd('ip-dhcp-host', 'add-last', "<host mac='52:54:00:00:00:0a' ip='192.168.9.9'/>");
    expect(outside.errorName).toBe('org.virtnet.network1.Error.InvalidArgument');
    expect(treeHash(configDir)).toBe(snap);
    const del = await upd('ip-dhcp-host', 'delete', "<host mac='52:54:00:00:00:09'/>");
    expect(del.ok, del.stderr).toBe(true);
    expect(readFileSync(join(configDir, 'my-net.xml'), 'utf8')).not.toContain('52:54:00:00:00:09');
  });

  it('bad calls are named errors; the service stays up and nothing on disk changes', async () => {
    const snap = treeHash(configDir);
    const big = 'x'.repeat(1024 * 1024);
    const cases: Array<[string, string, string[], string]> = [
      [NET_PATH, `${NETWORK_IFACE}.SetAutostart`, ['string:yes'], 'org.freedesktop.DBus.Error.InvalidArgs'],
      [
        NET_PATH,
        `${NETWORK_IFACE}.AddHost`,
        ['string:52:54:00:00:00:09'],
        'org.freedesktop.DBus.Error.InvalidArgs',
      ],
      [
        MANAGER_PATH,
        `${MANAGER_IFACE}.GetNetworkByName`,
        ['int32:5'],
        'org.freedesktop.DBus.Error.InvalidArgs',
      ],
      [
        MANAGER_PATH,
        `${MANAGER_IFACE}.GetNetworkByName`,
        ['string:nope'],
        'org.virtnet.network1.Error.NotFound',
      ],
      [`${MANAGER_PATH}/network/nope`, `${NETWORK_IFACE}.Start`, [], 'org.virtnet.network1.Error.NotFound'],
      [
        MANAGER_PATH,
        `${MANAGER_IFACE}.DefineNetwork`,
        ['string:<network><name>x</name'],
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        MANAGER_PATH,
        `${MANAGER_IFACE}.DefineNetwork`,
        ['string:<network><name>a/b</name></network>'],
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        MANAGER_PATH,
        `${MANAGER_IFACE}.DefineNetwork`,
        [`string:${big}`],
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        MANAGER_PATH,
        `${MANAGER_IFACE}.GetNetworkByName`,
        [`string:${big}`],
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        NET_PATH,
        `${NETWORK_IFACE}.AddHost`,
        [`string:${big}`, 'string:10.77.0.5', 'string:h'],
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        NET_PATH,
        `${NETWORK_IFACE}.AddHost`,
        ['string:52:54:00:00:00:03', 'string:10.77.0.5', `string:${big}`],
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        NET_PATH,
        `${NETWORK_IFACE}.RemoveHost`,
        [`string:${big}`],
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        MANAGER_PATH,
        `${MANAGER_IFACE}.HookEvent`,
        ['string:qemu', 'string:start', 'string:begin', 'string:-', `string:${big.repeat(5)}`],
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        MANAGER_PATH,
        `${MANAGER_IFACE}.HookEvent`,
        ['string:bogus', 'string:start', 'string:begin', 'string:-', 'string:'],
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [NET_PATH, `${NETWORK_IFACE}.NoSuchMethod`, [], 'org.freedesktop.DBus.Error.UnknownMethod'],
      [NET_PATH, `${NETWORK_IFACE}.Undefine`, [], 'org.virtnet.network1.Error.Conflict'],
    ];
    for (const [path, member, args, want] of cases) {
      // dbus-send takes arguments on its command line: a 1 MB argument goes through a temp file instead.
      const r = args.some((a) => a.length > 100_000)
        ? await busctlBig(bus, path, member, args)
        : await dsend(bus, path, member, args);
      expect(
        r.errorName,
        `${member}(${args.map((a) => a.slice(0, 40)).join(', ')}): ${r.stderr.slice(0, 300)}`,
      ).toBe(want);
      expect((r.text ?? '').length).toBeLessThan(4000);
    }
    const hook = await dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.HookEvent`, [
      'string:qemu',
      'string:prepare',
      'string:begin',
      'string:-',
      'string:<domain/>',
    ]);
    expect(hook.ok, hook.stderr).toBe(true);
    const prop = await dsend(bus, NET_PATH, 'org.freedesktop.DBus.Properties.Set', [
      `string:${NETWORK_IFACE}`,
      'string:Active',
      'variant:boolean:false',
    ]);
    expect(prop.errorName).toBe('org.freedesktop.DBus.Error.PropertyReadOnly');
    expect(treeHash(configDir)).toBe(snap);
    const alive = await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active']);
    expect(alive.stdout.trim()).toBe('b true');
  });

  it('a failed engine operation is Failed with the command and its stderr', async () => {
    const stop = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Stop']);
    expect(stop.code, stop.stderr).toBe(0);
    engine.failNextStart = new CommandError(
      'create bridge',
      ['ip', 'link', 'add', 'vh7br0'],
      2,
      'RTNETLINK answers: File exists',
    );
    const r = await dsend(bus, NET_PATH, `${NETWORK_IFACE}.Start`);
    expect(r.errorName).toBe('org.virtnet.network1.Error.Failed');
    expect(r.text).toContain(
      "create bridge: 'ip link add vh7br0' failed (exit 2): RTNETLINK answers: File exists",
    );
    expect(
      (await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active'])).stdout.trim(),
    ).toBe('b false');
  });

  it.skipIf(process.getuid?.() !== 0)(
    'an unprivileged caller (setpriv uid 65534) may read but every mutating call is AccessDenied',
    async () => {
      const snap = treeHash(configDir);
      const read = await dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.ListNetworks`, [], true);
      expect(read.ok, read.stderr).toBe(true);
      const leases = await dsend(bus, NET_PATH, `${NETWORK_IFACE}.GetLeases`, [], true);
      expect(leases.ok, leases.stderr).toBe(true);
      const mutating: Array<[string, string, string[]]> = [
        [MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [`string:${NET_XML.replace('my-net', 'evil')}`]],
        [MANAGER_PATH, `${MANAGER_IFACE}.Reload`, []],
        [
          MANAGER_PATH,
          `${MANAGER_IFACE}.HookEvent`,
          ['string:qemu', 'string:start', 'string:begin', 'string:-', 'string:'],
        ],
        [NET_PATH, `${NETWORK_IFACE}.Start`, []],
        [NET_PATH, `${NETWORK_IFACE}.Stop`, []],
        [NET_PATH, `${NETWORK_IFACE}.Undefine`, []],
        [NET_PATH, `${NETWORK_IFACE}.SetAutostart`, ['boolean:true']],
        [NET_PATH, `${NETWORK_IFACE}.AddHost`, ['string:52:54:00:00:00:04', 'string:10.77.0.40', 'string:h']],
        [NET_PATH, `${NETWORK_IFACE}.RemoveHost`, ['string:52:54:00:00:00:04']],
      ];
      const callsBefore = engine.calls.length;
      for (const [path, member, args] of mutating) {
        const r = await dsend(bus, path, member, args, true);
        expect(r.errorName, `${member}: ${r.stderr}`).toBe('org.virtnet.network1.Error.AccessDenied');
        expect(r.text).toMatch(
          /uid 65534 is not root and polkit \(org\.freedesktop\.PolicyKit1\) is not available/,
        );
      }
      expect(engine.calls.length).toBe(callsBefore);
      expect(treeHash(configDir)).toBe(snap);
    },
  );

  it.skipIf(process.getuid?.() !== 0)(
    'with polkit on the bus, its answer decides (fake polkit asked for the manage action)',
    async () => {
      const fake = await connectBus(bus.address);
      const asked: Array<{ subject: unknown; action: string; flags: number }> = [];
      let answer = true;
      fake.addMethodHandler((msg: Message) => {
        if (msg.type !== MessageType.METHOD_CALL || msg.interface !== 'org.freedesktop.PolicyKit1.Authority')
          return false;
        const [subject, action, , flags] = msg.body as [unknown, string, unknown, number];
        asked.push({ subject, action, flags });
        fake.send(Msg.newMethodReturn(msg, '(bba{ss})', [[answer, false, {}]]));
        return true;
      });
      expect(await fake.requestName('org.freedesktop.PolicyKit1', 4)).toBe(1);
      try {
        const yes = await dsend(bus, NET_PATH, `${NETWORK_IFACE}.SetAutostart`, ['boolean:true'], true);
        expect(yes.ok, yes.stderr).toBe(true);
        expect(asked.at(-1)?.action).toBe(ACTION_MANAGE);
        expect(JSON.stringify(asked.at(-1)?.subject)).toContain('system-bus-name');
        const link = join(configDir, 'autostart', 'my-net.xml');
        expect((await lstat(link)).isSymbolicLink()).toBe(true);
        expect(readlinkSync(link)).toBe('../my-net.xml');
        await mon.waitFor(
          (m) =>
            m.member === 'PropertiesChanged' &&
            JSON.stringify(m.payload).includes('"Autostart":{"type":"b","data":true}'),
        );
        answer = false;
        const no = await dsend(bus, NET_PATH, `${NETWORK_IFACE}.SetAutostart`, ['boolean:false'], true);
        expect(no.errorName).toBe('org.virtnet.network1.Error.AccessDenied');
        expect(no.text).toMatch(/polkit refused it for uid 65534/);
        expect(existsSync(link)).toBe(true);
      } finally {
        await fake.releaseName('org.freedesktop.PolicyKit1');
        fake.disconnect();
      }
    },
  );

  it('Reload picks up files added and removed behind its back', async () => {
    writeFileSync(
      join(configDir, 'dropped.xml'),
      NET_XML.replace('my-net', 'dropped').replace('vh7br0', 'vh7br1'),
    );
    writeFileSync(join(configDir, 'broken.xml'), '<network><name>broken</name><bogus/></network>');
    const r = await busctl(bus, ['call', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'Reload']);
    expect(r.code, r.stderr).toBe(0);
    const path = `${MANAGER_PATH}/network/dropped`;
    await mon.waitFor((m) => m.member === 'InterfacesAdded' && JSON.stringify(m.payload).includes(path));
    const list = await busctl(bus, [
      '--json=short',
      'call',
      BUS_NAME,
      MANAGER_PATH,
      MANAGER_IFACE,
      'ListNetworks',
    ]);
    expect(JSON.parse(list.stdout).data[0]).toEqual([path, NET_PATH]);
    rmSync(join(configDir, 'dropped.xml'));
    rmSync(join(configDir, 'broken.xml'));
    await busctl(bus, ['call', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'Reload']);
    await mon.waitFor((m) => m.member === 'InterfacesRemoved' && JSON.stringify(m.payload).includes(path));
  });

  it('a file without uuid and MAC gets the generated ones written back (stable across restarts)', async () => {
    const file = join(configDir, 'bare.xml');
    writeFileSync(file, NET_XML.replace('my-net', 'bare').replace('vh7br0', 'vh7br2'));
    const r = await busctl(bus, ['call', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'Reload']);
    expect(r.code, r.stderr).toBe(0);
    const path = `${MANAGER_PATH}/network/bare`;
    const uuid = await busctl(bus, ['--json=short', 'get-property', BUS_NAME, path, NETWORK_IFACE, 'UUID']);
    const u = JSON.parse(uuid.stdout).data as string;
    const text = readFileSync(file, 'utf8');
    expect(text).toContain(`<uuid>${u}</uuid>`);
    expect(text).toMatch(/<mac address='52:54:00(:[0-9a-f]{2}){3}'\/>/);
    // Read again: the same identity (nothing generated any more, so the file is left as it is).
    await busctl(bus, ['call', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'Reload']);
    expect(readFileSync(file, 'utf8')).toBe(text);
    rmSync(file);
    await busctl(bus, ['call', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'Reload']);
    await mon.waitFor((m) => m.member === 'InterfacesRemoved' && JSON.stringify(m.payload).includes(path));
  });

  it('Undefine removes the file and the autostart link and announces it', async () => {
    const r = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Undefine']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(configDir, 'my-net.xml'))).toBe(false);
    expect(existsSync(join(configDir, 'autostart', 'my-net.xml'))).toBe(false);
    await mon.waitFor(
      (m) => m.member === 'NetworkEvent' && JSON.stringify(m.payload).includes('"undefined"'),
    );
    await mon.waitFor(
      (m) => m.member === 'InterfacesRemoved' && JSON.stringify(m.payload).includes(NET_PATH),
    );
    const gone = await dsend(bus, NET_PATH, 'org.freedesktop.DBus.Properties.Get', [
      `string:${NETWORK_IFACE}`,
      'string:Name',
    ]);
    expect(gone.errorName).toBe('org.virtnet.network1.Error.NotFound');
  });
});

/** Call with one huge string argument through busctl (arguments read from a file via xargs are too big
 * for argv too, so this uses our own client connection instead). */
async function busctlBig(bus: PrivateBus, path: string, member: string, args: string[]) {
  const conn = await connectBus(bus.address);
  try {
    const dot = member.lastIndexOf('.');
    const values = args.map((a) => a.slice(a.indexOf(':') + 1));
    try {
      await conn.call(
        new Msg({
          type: MessageType.METHOD_CALL,
          destination: BUS_NAME,
          path,
          interface: member.slice(0, dot),
          member: member.slice(dot + 1),
          signature: 's'.repeat(values.length),
          body: values,
        }),
      );
      return { ok: true, errorName: undefined, text: '', stderr: '' };
    } catch (e) {
      const err = e as { type?: string; text?: string };
      return { ok: false, errorName: err.type, text: err.text ?? '', stderr: String(err.text ?? e) };
    }
  } finally {
    conn.disconnect();
  }
}

/** A private bus, a config dir holding `files`, and the service on it (fake engine, every call allowed). */
async function startService(
  files: Record<string, string>,
  engine: FakeEngine,
  extra: Partial<ServiceOptions> = {},
) {
  const bus = await startPrivateBus();
  const configDir = mkdtempSync(join(tmpdir(), 'vh7-svc-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(configDir, name), text);
  const conn = await connectBus(bus.address);
  const service = new VirtnetService({
    bus: conn,
    engine,
    store: new ConfigStore(configDir),
    codec: networkCodec,
    authorize: async () => {},
    version: '9.9.9-test',
    log: silentLogger(),
    ...extra,
  });
  expect(await conn.requestName(BUS_NAME, 4)).toBe(1);
  await service.start();
  return {
    bus,
    conn,
    configDir,
    async close() {
      await service.close();
      conn.disconnect();
      await bus.stop();
      rmSync(configDir, { recursive: true, force: true });
    },
  };
}
type ServiceFixture = Awaited<ReturnType<typeof startService>>;

describe.skipIf(skip).each(['keep-running', 'stop'] as const)(
  'a running network whose config file is deleted, --on-file-removed %s',
  (onFileRemoved) => {
    let s: ServiceFixture;
    const engine = new FakeEngine();
    beforeAll(async () => {
      s = await startService({ 'my-net.xml': NET_XML }, engine, { onFileRemoved });
    });
    afterAll(() => s?.close());

    it(
      onFileRemoved === 'stop' ? 'is stopped and undefined' : 'stays up, transient, until stopped',
      async () => {
        expect((await busctl(s.bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Start'])).code).toBe(0);
        expect(engine.isActive('my-net')).toBe(true);
        const mon = await startMonitor(s.bus);
        try {
          rmSync(join(s.configDir, 'my-net.xml'));
          const r = await busctl(s.bus, ['call', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'Reload']);
          expect(r.code, r.stderr).toBe(0);
          if (onFileRemoved === 'stop') {
            expect(engine.isActive('my-net')).toBe(false);
            await mon.waitFor(
              (m) => m.member === 'NetworkEvent' && JSON.stringify(m.payload).includes('"stopped"'),
            );
            await mon.waitFor(
              (m) => m.member === 'NetworkEvent' && JSON.stringify(m.payload).includes('"undefined"'),
            );
            await mon.waitFor(
              (m) => m.member === 'InterfacesRemoved' && JSON.stringify(m.payload).includes(NET_PATH),
            );
          } else {
            expect(engine.isActive('my-net')).toBe(true);
            const active = await busctl(s.bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active']);
            expect(active.stdout.trim()).toBe('b true');
            // Stopping the transient network makes it go away.
            expect((await busctl(s.bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Stop'])).code).toBe(0);
            await mon.waitFor(
              (m) => m.member === 'InterfacesRemoved' && JSON.stringify(m.payload).includes(NET_PATH),
            );
          }
        } finally {
          await mon.stop();
        }
      },
    );
  },
);

describe.skipIf(skip)('calls side by side: per network, never beside a define/undefine/reload', () => {
  let s: ServiceFixture;
  const engine = new FakeEngine();
  const netXml = (i: number) =>
    NET_XML.replace('my-net', `n${i}`).replace('vh7br0', `vh7c${i}`).replaceAll('10.77.0.', `10.78.${i}.`);
  const path = (i: number) => `${MANAGER_PATH}/network/n${i}`;
  const call = (p: string, iface: string, member: string, signature = '', body: unknown[] = []) =>
    s.conn.call(
      new Msg({
        type: MessageType.METHOD_CALL,
        destination: BUS_NAME,
        path: p,
        interface: iface,
        member,
        signature,
        body,
      }),
    );

  beforeAll(async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 12; i++) files[`n${i}.xml`] = netXml(i);
    s = await startService(files, engine);
  });
  afterAll(() => s?.close());

  it('Start of different networks overlaps; of one network, one after the other', async () => {
    engine.delayMs = 150;
    engine.maxRunning = 0;
    await Promise.all(Array.from({ length: 12 }, (_, i) => call(path(i), NETWORK_IFACE, 'Start')));
    expect(engine.maxRunning).toBe(12);
    expect(engine.list()).toHaveLength(12);
    engine.maxRunning = 0;
    const r = await Promise.allSettled([
      call(path(0), NETWORK_IFACE, 'Stop'),
      call(path(0), NETWORK_IFACE, 'Start'),
    ]);
    expect(r.map((x) => x.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(engine.maxRunning).toBe(1);
    expect(engine.isActive('n0')).toBe(true);
  });

  it('Undefine waits for a running Stop of that network and then sees it stopped', async () => {
    engine.delayMs = 150;
    const stop = call(path(3), NETWORK_IFACE, 'Stop');
    const undefine = call(path(3), NETWORK_IFACE, 'Undefine'); // would be a Conflict while active
    await stop;
    await undefine;
    expect(engine.isActive('n3')).toBe(false);
    expect(existsSync(join(s.configDir, 'n3.xml'))).toBe(false);
    // A Start queued after a Reload runs after it.
    engine.calls.length = 0;
    await Promise.all([call(MANAGER_PATH, MANAGER_IFACE, 'Reload'), call(path(2), NETWORK_IFACE, 'Stop')]);
    expect(engine.isActive('n2')).toBe(false);
  });
});
