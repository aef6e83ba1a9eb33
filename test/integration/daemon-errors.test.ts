import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, Message, MessageType } from '../../src/bus/dbus.js';
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
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns, type Netns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { treeHash } from '../helpers/tree.js';

const skip = missingPrereqs(['ip', 'dbus-daemon', 'busctl', 'dbus-send', 'dnsmasq', 'setpriv', 'nft']);

const NET = 'vh7-err';
const NET_PATH = `${MANAGER_PATH}/network/vh7_2derr`;
const XML = `<network>
  <name>${NET}</name>
  <forward mode='nat'/>
  <bridge name='vh7br5' stp='off'/>
  <ip address='10.85.0.1' prefix='24'><dhcp><range start='10.85.0.10' end='10.85.0.20'/></dhcp></ip>
</network>`;

interface Outcome {
  ok: boolean;
  errorName?: string;
  text: string;
}

/** dbus-send (as root or nobody): the reply or the error name and text. */
async function dsend(
  bus: PrivateBus,
  path: string,
  member: string,
  args: string[],
  asNobody = false,
): Promise<Outcome> {
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
  const m = /^Error ([\w.]+): (.*)$/s.exec(r.stderr.trim());
  return m ? { ok: false, errorName: m[1]!, text: m[2]! } : { ok: r.code === 0, text: r.stdout + r.stderr };
}

/** A call with string arguments too large for any argv (1 MB), sent with a dbus-next connection. */
async function bigCall(
  bus: PrivateBus,
  path: string,
  iface: string,
  member: string,
  args: string[],
): Promise<Outcome> {
  const conn = await connectBus(bus.address);
  try {
    await conn.call(
      new Message({
        type: MessageType.METHOD_CALL,
        destination: BUS_NAME,
        path,
        interface: iface,
        member,
        signature: 's'.repeat(args.length),
        body: args,
      }),
    );
    return { ok: true, text: '' };
  } catch (e) {
    const err = e as { type?: string; text?: string };
    return { ok: false, errorName: err.type ?? 'none', text: err.text ?? String(e) };
  } finally {
    conn.disconnect();
  }
}

describe.skipIf(skip)('virtnetd refuses bad calls and unprivileged changes (real daemon)', () => {
  let bus: PrivateBus;
  let host: Netns;
  let daemon: VirtnetdProcess;
  let base: string;
  let configDir: string;

  beforeAll(async () => {
    bus = await startPrivateBus();
    host = await createNetns('vh7-e');
    base = mkdtempSync(join(tmpdir(), 'vh7-err-'));
    chmodSync(base, 0o755);
    configDir = join(base, 'networks');
    daemon = await startVirtnetd({
      bus,
      configDir,
      stateDir: join(base, 'state'),
      runDir: join(base, 'run'),
      netns: host.name,
    });
    const d = await busctl(bus, ['call', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'DefineNetwork', 's', XML]);
    expect(d.code, d.stderr).toBe(0);
    const s = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Start']);
    expect(s.code, `${s.stderr}\n${daemon.output()}`).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await daemon?.stop('SIGTERM');
    cleanupAllNetns();
    await bus?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('bad calls: each a named error; the daemon stays up; nothing on disk changes', async () => {
    const before = treeHash(configDir);
    const big = 'x'.repeat(1024 * 1024);
    const cases: Array<[string, () => Promise<Outcome>, string]> = [
      [
        'wrong types (SetAutostart with a string)',
        () => dsend(bus, NET_PATH, `${NETWORK_IFACE}.SetAutostart`, ['string:yes']),
        'org.freedesktop.DBus.Error.InvalidArgs',
      ],
      [
        'wrong arity (AddHost with one string)',
        () => dsend(bus, NET_PATH, `${NETWORK_IFACE}.AddHost`, ['string:52:54:00:00:00:01']),
        'org.freedesktop.DBus.Error.InvalidArgs',
      ],
      [
        'wrong types (GetNetworkByName with an int)',
        () => dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.GetNetworkByName`, ['int32:7']),
        'org.freedesktop.DBus.Error.InvalidArgs',
      ],
      [
        'unknown network by name',
        () => dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.GetNetworkByName`, ['string:nosuch']),
        'org.virtnet.network1.Error.NotFound',
      ],
      [
        'unknown network path',
        () => dsend(bus, `${MANAGER_PATH}/network/nosuch`, `${NETWORK_IFACE}.Stop`, []),
        'org.virtnet.network1.Error.NotFound',
      ],
      [
        'invalid XML',
        () =>
          dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [
            'string:<network><name>x</name><forward mode="nat"',
          ]),
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        'invalid network (bad prefix)',
        () =>
          dsend(bus, MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [
            "string:<network><name>y</name><ip address='10.1.1.1' prefix='99'/></network>",
          ]),
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        'host outside the subnet',
        () =>
          dsend(bus, NET_PATH, `${NETWORK_IFACE}.AddHost`, [
            'string:52:54:00:00:00:02',
            'string:192.168.99.5',
            'string:h',
          ]),
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        '1 MB XML',
        () => bigCall(bus, MANAGER_PATH, MANAGER_IFACE, 'DefineNetwork', [big]),
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        '1 MB name',
        () => bigCall(bus, MANAGER_PATH, MANAGER_IFACE, 'GetNetworkByName', [big]),
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        '1 MB MAC',
        () => bigCall(bus, NET_PATH, NETWORK_IFACE, 'AddHost', [big, '10.85.0.5', 'h']),
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        '1 MB host name',
        () => bigCall(bus, NET_PATH, NETWORK_IFACE, 'AddHost', ['52:54:00:00:00:03', '10.85.0.5', big]),
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        '1 MB hook sub-operation',
        () => bigCall(bus, MANAGER_PATH, MANAGER_IFACE, 'HookEvent', ['vm', 'start', big, '-', '<domain/>']),
        'org.virtnet.network1.Error.InvalidArgument',
      ],
      [
        'undefine while active',
        () => dsend(bus, NET_PATH, `${NETWORK_IFACE}.Undefine`, []),
        'org.virtnet.network1.Error.Conflict',
      ],
      [
        'start while active',
        () => dsend(bus, NET_PATH, `${NETWORK_IFACE}.Start`, []),
        'org.virtnet.network1.Error.Conflict',
      ],
      [
        'read-only property',
        () =>
          dsend(bus, NET_PATH, 'org.freedesktop.DBus.Properties.Set', [
            `string:${NETWORK_IFACE}`,
            'string:Bridge',
            'variant:string:x',
          ]),
        'org.freedesktop.DBus.Error.PropertyReadOnly',
      ],
    ];
    for (const [what, fn, want] of cases) {
      const r = await fn();
      expect(r.errorName, `${what}: ${r.text.slice(0, 300)}`).toBe(want);
      expect(r.text.length, what).toBeLessThan(4000);
      expect(daemon.exited(), `${what}: daemon died\n${daemon.output()}`).toBe(false);
    }
    expect(treeHash(configDir)).toBe(before);
    const alive = await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active']);
    expect(alive.stdout.trim()).toBe('b true');
  });

  it('an unprivileged caller (setpriv --reuid=65534) may read but every mutating method is AccessDenied', async () => {
    const before = treeHash(configDir);
    for (const [path, member] of [
      [MANAGER_PATH, `${MANAGER_IFACE}.ListNetworks`],
      [NET_PATH, `${NETWORK_IFACE}.GetXML`],
      [NET_PATH, `${NETWORK_IFACE}.GetLeases`],
    ] as const) {
      const r = await dsend(bus, path, member, [], true);
      expect(r.ok, `${member}: ${r.text}`).toBe(true);
    }
    const get = await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active'], {
      asNobody: true,
    });
    expect(get.stdout.trim()).toBe('b true');

    const mutating: Array<[string, string, string[]]> = [
      [MANAGER_PATH, `${MANAGER_IFACE}.DefineNetwork`, [`string:${XML.replace(NET, 'evil')}`]],
      [MANAGER_PATH, `${MANAGER_IFACE}.Reload`, []],
      [
        MANAGER_PATH,
        `${MANAGER_IFACE}.HookEvent`,
        ['string:vm', 'string:stopped', 'string:end', 'string:-', 'string:<domain/>'],
      ],
      [MANAGER_PATH, `${MANAGER_IFACE}.ImportLibvirt`, ['string:default', 'string:']],
      [MANAGER_PATH, `${MANAGER_IFACE}.RevertLibvirt`, ['string:default', 'string:']],
      [NET_PATH, `${NETWORK_IFACE}.Start`, []],
      [NET_PATH, `${NETWORK_IFACE}.Stop`, []],
      [NET_PATH, `${NETWORK_IFACE}.Undefine`, []],
      [NET_PATH, `${NETWORK_IFACE}.SetAutostart`, ['boolean:true']],
      [NET_PATH, `${NETWORK_IFACE}.AddHost`, ['string:52:54:00:00:00:04', 'string:10.85.0.44', 'string:h']],
      [NET_PATH, `${NETWORK_IFACE}.RemoveHost`, ['string:52:54:00:00:00:04']],
      [
        NET_PATH,
        `${NETWORK_IFACE}.Update`,
        [
          'string:ip-dhcp-host',
          'string:add-last',
          'int32:-1',
          "string:<host mac='52:54:00:00:00:05' ip='10.85.0.45'/>",
        ],
      ],
    ];
    // Every mutating member of the API is in the list (a new one must be added here).
    const { managerInterface, networkInterface } = await import('../../src/bus/api.js');
    const guarded = [...managerInterface.methods, ...networkInterface.methods]
      .filter((m) => m.action)
      .map((m) => m.name);
    expect(mutating.map(([, m]) => m.split('.').pop()).sort()).toEqual(guarded.sort());

    for (const [path, member, args] of mutating) {
      const r = await dsend(bus, path, member, args, true);
      expect(r.errorName, `${member}: ${r.text}`).toBe('org.virtnet.network1.Error.AccessDenied');
      expect(r.text).toMatch(
        /uid 65534 is not root and polkit \(org\.freedesktop\.PolicyKit1\) is not available on this bus; run it as root/,
      );
    }
    // busctl as nobody too (another real client).
    const b = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Stop'], { asNobody: true });
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/not root/);
    expect(treeHash(configDir)).toBe(before);
    const still = await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active']);
    expect(still.stdout.trim()).toBe('b true');
    expect(daemon.output()).toMatch(
      /refused org\.virtnet\.network1\.manage-networks to :\S+ \(uid 65534\): no polkit/,
    );
  });

  it('only root may own the name (shipped policy): a second daemon as nobody cannot take it', async () => {
    const r = await execOut([
      ...NOBODY,
      'busctl',
      `--address=${bus.address}`,
      'call',
      'org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus',
      'RequestName',
      'su',
      BUS_NAME,
      '4',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Access denied/);
  });
});
