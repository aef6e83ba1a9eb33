/**
 * Load on the real virtnetd (real engine in a vh9- netns, private system bus):
 * - 50 domains started at once through the hook script (hooks/qemu → dbus-send → HookEvent:
 *   prepare, start, started), then stopped at once (stopped, release), three times over; after each
 *   start burst the hostsfile holds exactly the 50 reservations once each and the ruleset each
 *   domain's forward table once; after each stop burst none of them (test/integration/
 *   hooks-daemon.test.ts has the single burst);
 * - 1,000 bus calls from 10 clients at once, mixed reads (property Get, GetXML, GetLeases,
 *   ListNetworks) and AddHost/RemoveHost: every call answered, and at the end the hostsfile lines are
 *   exactly the reservations (the XML's host + what each client left), no duplicates, the daemon's
 *   state file agrees, the daemon still answers.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, Message, type MessageBus, MessageType } from '../../src/bus/dbus.js';
import {
  BUS_NAME,
  busctl,
  MANAGER_IFACE,
  MANAGER_PATH,
  NETWORK_IFACE,
  type PrivateBus,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns, type Netns } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';
import { domainXml, macFor, meta, uuidFor } from '../hooks/fakes.js';
import { type Transpiled, transpileSources } from '../hooks/transpile.js';

const skip = missingPrereqs(['ip', 'dbus-daemon', 'busctl', 'dbus-send', 'dnsmasq', 'nft']);

const NET = 'vh9-load';
const BRIDGE = 'vh9brl';
const NET_PATH = `${MANAGER_PATH}/network/vh9_2dload`;
const XML_HOST_MAC = '52:54:00:09:ff:01';
const NET_XML = `<network>
  <name>${NET}</name>
  <forward mode='nat'/>
  <bridge name='${BRIDGE}' stp='off' delay='0'/>
  <ip address='10.94.0.1' prefix='16'>
    <dhcp><range start='10.94.200.1' end='10.94.200.250'/><host mac='${XML_HOST_MAC}' name='fixed' ip='10.94.0.5'/></dhcp>
  </ip>
</network>
`;

describe.skipIf(skip)('virtnetd under load (hooks bursts, 10 bus clients)', () => {
  let bus: PrivateBus;
  let host: Netns;
  let base: string;
  let dirs: { configDir: string; stateDir: string; runDir: string };
  let daemon: VirtnetdProcess;
  let build: Transpiled;

  const hostsLines = () =>
    readFileSync(join(dirs.runDir, 'dnsmasq', `${NET}.hostsfile`), 'utf8')
      .split('\n')
      .filter(Boolean);
  const ruleset = async () => (await host.exec(['nft', 'list', 'ruleset'])).stdout;
  const hook = (args: string[], xml: string) =>
    host.exec([join(projectRoot, 'hooks', 'qemu'), ...args], {
      input: xml,
      allowFail: true,
      timeoutMs: 120_000,
      env: {
        DBUS_SYSTEM_BUS_ADDRESS: bus.address,
        VIRTNET_HOOK_MAIN: build.hookMain,
        VIRTNET_CONFIG_DIR: dirs.configDir,
        VIRTNET_RUN_DIR: dirs.runDir,
        VIRTNET_HOOK_TIMEOUT_MS: '60000',
      },
    });

  beforeAll(async () => {
    build = transpileSources('vh9-build-');
    bus = await startPrivateBus({ tempPrefix: 'vh9-bus-' });
    host = await createNetns('vh9-l');
    base = mkdtempSync(join(tmpdir(), 'vh9-load-'));
    chmodSync(base, 0o755);
    dirs = { configDir: join(base, 'networks'), stateDir: join(base, 'state'), runDir: join(base, 'run') };
    mkdirSync(dirs.configDir, { recursive: true });
    writeFileSync(join(dirs.configDir, `${NET}.xml`), NET_XML);
    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name, logLevel: 'warning' });
    const r = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Start']);
    expect(r.code, `${r.stderr}\n${daemon.output()}`).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Stop']).catch(() => {});
    await daemon?.stop('SIGTERM');
    cleanupAllNetns();
    await bus?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
    build?.remove();
  });

  it('50 concurrent domain starts and stops through the hooks, 3 times: consistent after each burst', async () => {
    const N = 50;
    const ip = (i: number) => `10.94.1.${10 + i}`;
    const xml = (i: number, tap?: string) =>
      domainXml({
        name: `vm${i}`,
        uuid: uuidFor(900 + i),
        mac: macFor(900 + i),
        bridge: BRIDGE,
        tap,
        metadata: meta(
          `<virtnet:interface mac='${macFor(900 + i)}' ip='${ip(i)}'><virtnet:forward proto='tcp' host-port='${31000 + i}' guest-port='22'/></virtnet:interface>`,
        ),
      });
    const timings: string[] = [];
    for (let cycle = 0; cycle < 3; cycle++) {
      let t0 = Date.now();
      const starts = await Promise.all(
        Array.from({ length: N }, async (_, i) => {
          const out = [];
          out.push(await hook([`vm${i}`, 'prepare', 'begin', '-'], xml(i)));
          out.push(await hook([`vm${i}`, 'start', 'begin', '-'], xml(i, `vnet${i}`)));
          out.push(await hook([`vm${i}`, 'started', 'begin', '-'], xml(i, `vnet${i}`)));
          return out;
        }),
      );
      const startMs = Date.now() - t0;
      for (const r of starts.flat()) expect(r.exitCode, r.stderr).toBe(0);
      const lines = hostsLines();
      expect(new Set(lines).size, 'duplicate hostsfile line').toBe(lines.length);
      expect(lines.length).toBe(N + 1);
      for (let i = 0; i < N; i++) expect(lines.filter((l) => l.includes(`,${ip(i)}`)).length).toBe(1);
      const rs = await ruleset();
      for (let i = 0; i < N; i++)
        expect(rs.split(`dport ${31000 + i} `).length - 1, `forward of vm${i}`).toBeGreaterThanOrEqual(1);
      const tables = rs.match(/^table \S+ virtnet_pf_\S+/gm) ?? [];
      expect(new Set(tables).size, 'a domain table twice').toBe(tables.length);
      expect(new Set(tables.map((t) => t.split(' ').pop())).size).toBe(N);

      t0 = Date.now();
      const stops = await Promise.all(
        Array.from({ length: N }, async (_, i) => [
          await hook([`vm${i}`, 'stopped', 'end', '-'], xml(i)),
          await hook([`vm${i}`, 'release', 'end', '-'], xml(i)),
        ]),
      );
      const stopMs = Date.now() - t0;
      for (const r of stops.flat()) expect(r.exitCode, r.stderr).toBe(0);
      expect(hostsLines().map((l) => l.split(',')[0])).toEqual([XML_HOST_MAC]);
      expect(await ruleset()).not.toContain('virtnet_pf_');
      expect(
        readFileSync(join(dirs.runDir, 'networks', `${NET}.live`), 'utf8').includes(macFor(900)),
        'state file still holds a domain reservation',
      ).toBe(false);
      timings.push(`cycle ${cycle + 1}: 50 starts ${startMs} ms, 50 stops ${stopMs} ms`);
    }
    console.log(`hooks load: ${timings.join('; ')}`);
    expect(daemon.exited()).toBe(false);
  }, 600_000);

  it('1,000 bus calls from 10 clients at once (reads + AddHost/RemoveHost): all answered, consistent', async () => {
    const CLIENTS = 10;
    const PER = 100;
    const conns: MessageBus[] = await Promise.all(
      Array.from({ length: CLIENTS }, () => connectBus(bus.address)),
    );
    const left = new Map<string, string>(); // mac -> ip the client left in place
    const failures: string[] = [];
    let answered = 0;
    const t0 = Date.now();
    const send = (
      conn: MessageBus,
      path: string,
      iface: string,
      member: string,
      signature = '',
      body: unknown[] = [],
    ) =>
      conn.call(
        new Message({
          type: MessageType.METHOD_CALL,
          destination: BUS_NAME,
          path,
          interface: iface,
          member,
          signature,
          body,
        }),
      );
    try {
      await Promise.all(
        conns.map(async (conn, k) => {
          const mine = new Map<string, string>();
          for (let j = 0; j < PER; j++) {
            const kind = j % 5;
            try {
              if (kind === 0 || kind === 2) {
                // Add a new reservation of this client.
                const mac = `52:54:00:09:${(0x20 + k).toString(16)}:${j.toString(16).padStart(2, '0')}`;
                const addr = `10.94.${20 + k}.${j + 1}`;
                await send(conn, NET_PATH, NETWORK_IFACE, 'AddHost', 'sss', [mac, addr, `c${k}h${j}`]);
                mine.set(mac, addr);
              } else if (kind === 3 && mine.size > 0) {
                const mac = [...mine.keys()][0]!;
                await send(conn, NET_PATH, NETWORK_IFACE, 'RemoveHost', 's', [mac]);
                mine.delete(mac);
              } else if (kind === 1) {
                await send(conn, NET_PATH, 'org.freedesktop.DBus.Properties', 'Get', 'ss', [
                  NETWORK_IFACE,
                  'Active',
                ]);
              } else if (kind === 4) {
                await send(conn, NET_PATH, NETWORK_IFACE, j % 10 === 4 ? 'GetXML' : 'GetLeases');
              } else {
                await send(conn, MANAGER_PATH, MANAGER_IFACE, 'ListNetworks');
              }
              answered++;
            } catch (e) {
              failures.push(
                `client ${k} call ${j}: ${(e as { type?: string }).type ?? ''} ${(e as Error).message}`,
              );
            }
          }
          for (const [m, a] of mine) left.set(m, a);
        }),
      );
    } finally {
      for (const c of conns) c.disconnect();
    }
    const ms = Date.now() - t0;
    console.log(
      `bus load: ${CLIENTS * PER} calls from ${CLIENTS} clients in ${ms} ms (${answered} answered, ${failures.length} failed)`,
    );
    expect(failures.slice(0, 5)).toEqual([]);
    expect(answered).toBe(CLIENTS * PER);

    // Hostsfile lines = reservations, once each.
    const lines = hostsLines();
    expect(new Set(lines).size, 'duplicate hostsfile line').toBe(lines.length);
    const macs = lines.map((l) => l.split(',')[0]!).sort();
    expect(macs).toEqual([XML_HOST_MAC, ...left.keys()].sort());
    for (const [m, a] of left)
      expect(lines).toContain(lines.find((l) => l.startsWith(`${m},`) && l.includes(a)));
    // The daemon's recorded state agrees (what a restarted daemon would adopt).
    const live = JSON.parse(readFileSync(join(dirs.runDir, 'networks', `${NET}.live`), 'utf8')) as {
      extraHosts: { mac: string }[];
    };
    expect(live.extraHosts.map((h) => h.mac).sort()).toEqual([...left.keys()].sort());
    // Still answering.
    const v = await busctl(bus, ['get-property', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Active']);
    expect(v.stdout.trim()).toBe('b true');
    expect(daemon.exited()).toBe(false);
  }, 300_000);
});
