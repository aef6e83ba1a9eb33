/**
 * Proof of issue 4 with the real thing: a private system bus (test-written config including virtnet's
 * shipped policy), virtnetd (real Linux engine) running inside a test netns, real clients (busctl
 * introspect/call/get-property/monitor, dbus-send) and a guest netns (veth + busybox udhcpc).
 *
 * define → start → guest gets a lease → GetLeases shows it and LeaseChanged was emitted → AddHost (a
 * second guest gets the reserved address) → SIGTERM leaves the network up and a new daemon adopts it →
 * stop → undefine; NetworkEvent, PropertiesChanged and ObjectManager signals seen by `busctl monitor`.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { captureIo } from '../cli/io.js';
import { interfacesOf } from '../daemon/introspection-xml.js';
import {
  BUS_NAME,
  busctl,
  execOut,
  MANAGER_IFACE,
  MANAGER_PATH,
  type Monitor,
  NETWORK_IFACE,
  type PrivateBus,
  startMonitor,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const skip = missingPrereqs(['ip', 'dbus-daemon', 'busctl', 'dbus-send', 'dnsmasq', 'busybox', 'nft']);

const BRIDGE = 'vh7br0';
const NET = 'vh7-nat';
const NET_PATH = `${MANAGER_PATH}/network/vh7_2dnat`;
const XML = `<network>
  <name>${NET}</name>
  <forward mode='nat'/>
  <bridge name='${BRIDGE}' stp='off' delay='0'/>
  <ip address='10.81.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.81.0.100' end='10.81.0.150'/>
    </dhcp>
  </ip>
</network>`;
const GUEST_MAC = '52:54:00:81:00:01';
const GUEST2_MAC = '52:54:00:81:00:02';

type Msg = Record<string, unknown>;
const data = (m: Msg) => (m.payload as { data: unknown[] } | undefined)?.data ?? [];
const isSignal = (member: string, path?: string) => (m: Msg) =>
  m.type === 'signal' && m.member === member && (path === undefined || m.path === path);

describe.skipIf(skip)('virtnetd on a private system bus, real engine in a netns', () => {
  let bus: PrivateBus;
  let host: Netns;
  let guest: Netns;
  let guest2: Netns;
  let dirs: { configDir: string; stateDir: string; runDir: string };
  let daemon: VirtnetdProcess | undefined;
  let mon: Monitor;

  const call = (path: string, iface: string, member: string, ...sigArgs: string[]) =>
    busctl(bus, ['--json=short', 'call', BUS_NAME, path, iface, member, ...sigArgs]);

  beforeAll(async () => {
    bus = await startPrivateBus();
    host = await createNetns('vh7-h');
    guest = await createNetns('vh7-g');
    guest2 = await createNetns('vh7-g');
    const base = mkdtempSync(join(tmpdir(), 'vh7-daemon-'));
    // dnsmasq drops to nobody and re-reads its hostsfile on SIGHUP: the run dir must be traversable,
    // as /run/virtnet is in production.
    chmodSync(base, 0o755);
    dirs = { configDir: join(base, 'networks'), stateDir: join(base, 'state'), runDir: join(base, 'run') };
    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name });
    mon = await startMonitor(bus);
  }, 120_000);

  afterAll(async () => {
    await mon?.stop();
    await daemon?.stop('SIGTERM');
    cleanupAllNetns(); // kills dnsmasq and anything else left in our namespaces
    await bus?.stop();
    if (dirs) rmSync(join(dirs.configDir, '..'), { recursive: true, force: true });
  });

  it('live introspection of the running daemon equals dbus/*.xml', async () => {
    const file = (n: string) => interfacesOf(readFileSync(join(projectRoot, 'dbus', `${n}.xml`), 'utf8'))[n];
    const live = await busctl(bus, ['introspect', '--xml-interface', BUS_NAME, MANAGER_PATH]);
    expect(live.code, live.stderr).toBe(0);
    expect(interfacesOf(live.stdout)[MANAGER_IFACE]).toEqual(file(MANAGER_IFACE));
  });

  it('DefineNetwork (busctl call) writes the config file and announces it', async () => {
    const r = await call(MANAGER_PATH, MANAGER_IFACE, 'DefineNetwork', 's', XML);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).data).toEqual([NET_PATH]);
    expect(existsSync(join(dirs.configDir, `${NET}.xml`))).toBe(true);
    await mon.waitFor((m) => isSignal('InterfacesAdded', MANAGER_PATH)(m) && data(m)[0] === NET_PATH);
    await mon.waitFor(
      (m) =>
        isSignal('NetworkEvent')(m) && JSON.stringify(data(m)) === JSON.stringify([NET, NET_PATH, 'defined']),
    );
    const live = await busctl(bus, ['introspect', '--xml-interface', BUS_NAME, NET_PATH]);
    const file = interfacesOf(readFileSync(join(projectRoot, 'dbus', `${NETWORK_IFACE}.xml`), 'utf8'));
    expect(interfacesOf(live.stdout)[NETWORK_IFACE]).toEqual(file[NETWORK_IFACE]);
  });

  it('Start (dbus-send) brings the bridge up; PropertiesChanged(Active) and NetworkEvent started', async () => {
    const r = await execOut([
      'dbus-send',
      `--bus=${bus.address}`,
      '--print-reply',
      `--dest=${BUS_NAME}`,
      NET_PATH,
      `${NETWORK_IFACE}.Start`,
    ]);
    expect(r.code, `${r.stderr}\n${daemon!.output()}`).toBe(0);
    await mon.waitFor(
      (m) =>
        isSignal('PropertiesChanged', NET_PATH)(m) &&
        JSON.stringify(data(m)).includes('"Active":{"type":"b","data":true}'),
    );
    await mon.waitFor((m) => isSignal('NetworkEvent')(m) && data(m)[2] === 'started');
    const p = await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active']);
    expect(p.stdout.trim()).toBe('b true');
    const br = await host.exec(['ip', '-br', 'addr', 'show', BRIDGE]);
    expect(br.stdout).toContain('10.81.0.1/24');
    // virtnetctl is a client of the same API.
    const io = captureIo();
    io.env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address };
    expect(await main(['list'], io), io.err).toBe(0);
    expect(io.out).toBe(
      `NAME     ACTIVE  AUTOSTART  BRIDGE  FORWARD\n${NET}  yes     no         ${BRIDGE}  nat\n`,
    );
  });

  it('a guest gets a lease: GetLeases shows it and LeaseChanged was emitted', async () => {
    await link(guest, 'eth0', host, 'vh7g0', { macA: GUEST_MAC });
    await host.addPort(BRIDGE, 'vh7g0');
    const lease = await guestDhcp(guest, 'eth0', { hostname: 'guest1', tries: 10 });
    expect(lease.ip).toMatch(/^10\.81\.0\.(1[0-4]\d|150)$/);
    let rows: unknown[] = [];
    for (let i = 0; i < 50 && rows.length === 0; i++) {
      const r = await call(NET_PATH, NETWORK_IFACE, 'GetLeases');
      rows = (JSON.parse(r.stdout).data[0] as unknown[]) ?? [];
      if (!rows.length) await sleep(100);
    }
    expect(rows).toEqual([[GUEST_MAC, lease.ip, 'guest1', expect.any(Number)]]);
    const expiry = (rows[0] as [string, string, string, number])[3];
    expect(expiry).toBeGreaterThan(Date.now() / 1000);
    await mon.waitFor(
      (m) => isSignal('LeaseChanged', NET_PATH)(m) && data(m)[1] === GUEST_MAC && data(m)[2] === lease.ip,
      Number(process.env.VH7_LEASE_WAIT ?? 15_000),
    );
  });

  it('AddHost reserves an address live: a second guest gets it', async () => {
    const r = await call(NET_PATH, NETWORK_IFACE, 'AddHost', 'sss', GUEST2_MAC, '10.81.0.77', 'fixed');
    expect(r.code, `${r.stderr}\n${daemon!.output()}`).toBe(0);
    await link(guest2, 'eth0', host, 'vh7g1', { macA: GUEST2_MAC });
    await host.addPort(BRIDGE, 'vh7g1');
    const lease = await guestDhcp(guest2, 'eth0', { tries: 10 });
    expect(lease.ip, daemon!.output()).toBe('10.81.0.77');
  });

  it('SIGTERM leaves the network up; a new daemon adopts it', async () => {
    const dnsmasqBefore = (
      await host.exec(['pgrep', '-f', `dnsmasq.*${NET}`], { allowFail: true })
    ).stdout.trim();
    expect(dnsmasqBefore).not.toBe('');
    expect(await daemon!.stop('SIGTERM')).toBe(0);
    expect(daemon!.output()).toMatch(/shutting down \(SIGTERM\); networks stay up/);
    const br = await host.exec(['ip', '-br', 'link', 'show', BRIDGE]);
    expect(br.stdout).toContain(BRIDGE);
    const dnsmasqAfter = (
      await host.exec(['pgrep', '-f', `dnsmasq.*${NET}`], { allowFail: true })
    ).stdout.trim();
    expect(dnsmasqAfter).toBe(dnsmasqBefore);

    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name });
    const p = await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active']);
    expect(p.stdout.trim(), daemon.output()).toBe('b true');
    const r = await call(NET_PATH, NETWORK_IFACE, 'GetLeases');
    expect(JSON.stringify(JSON.parse(r.stdout).data)).toContain(GUEST_MAC);
  });

  it('Stop takes it down; Undefine removes it; the monitor saw every event', async () => {
    const s = await call(NET_PATH, NETWORK_IFACE, 'Stop');
    expect(s.code, `${s.stderr}\n${daemon!.output()}`).toBe(0);
    await mon.waitFor(
      (m) =>
        isSignal('PropertiesChanged', NET_PATH)(m) &&
        JSON.stringify(data(m)).includes('"Active":{"type":"b","data":false}'),
    );
    await mon.waitFor((m) => isSignal('NetworkEvent')(m) && data(m)[2] === 'stopped');
    const br = await host.exec(['ip', 'link', 'show', BRIDGE], { allowFail: true });
    expect(br.exitCode).not.toBe(0);

    const u = await call(NET_PATH, NETWORK_IFACE, 'Undefine');
    expect(u.code, u.stderr).toBe(0);
    await mon.waitFor((m) => isSignal('NetworkEvent')(m) && data(m)[2] === 'undefined');
    await mon.waitFor((m) => isSignal('InterfacesRemoved', MANAGER_PATH)(m) && data(m)[0] === NET_PATH);
    expect(existsSync(join(dirs.configDir, `${NET}.xml`))).toBe(false);
    const list = await call(MANAGER_PATH, MANAGER_IFACE, 'ListNetworks');
    expect(JSON.parse(list.stdout).data).toEqual([[]]);
    // Order of the lifecycle as the monitor saw it.
    const events = mon
      .messages()
      .filter(isSignal('NetworkEvent'))
      .map((m) => data(m)[2]);
    expect(events).toEqual(['defined', 'started', 'stopped', 'undefined']);
  });
});
