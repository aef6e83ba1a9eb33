/**
 * The repair through the whole daemon (issue 12): virtnetd (compiled, real engine, `coexist` on as
 * shipped) in a vr13- netns on a private system bus, a NAT network, and a domain whose port forward
 * the real hook programs (hooks/qemu, the captured libvirt 9.0 calls) put in. `nft flush ruleset`
 * takes everything; virtnetd puts the network's tables back, announces `NetworkEvent` 'repaired',
 * logs one warning, and the hooks' port forward comes back too — the ruleset is exactly as before.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUS_NAME,
  busctl,
  MANAGER_PATH,
  type Monitor,
  NETWORK_IFACE,
  type PrivateBus,
  startMonitor,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { cleanupAllNetns, createNetns, type Netns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { libvirtHooksDir, missingShared, projectRoot } from '../helpers/shared.js';
import { meta } from '../hooks/fakes.js';
import { type Transpiled, transpileSources } from '../hooks/transpile.js';
import { dropEmptyBuiltins, waitFor } from './engine-harness.js';

const skip =
  missingPrereqs(['ip', 'dbus-daemon', 'busctl', 'dbus-send', 'dnsmasq', 'nft']) ??
  missingShared(libvirtHooksDir);

const NET = 'vr13-nat';
const BRIDGE = 'vr13br0';
const NET_PATH = `${MANAGER_PATH}/network/vr13_2dnat`;
const NET_XML = `<network>
  <name>${NET}</name>
  <forward mode='nat'/>
  <bridge name='${BRIDGE}' stp='off' delay='0'/>
  <ip address='10.85.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.85.0.100' end='10.85.0.200'/></dhcp>
  </ip>
</network>
`;
const MAC = '52:54:00:aa:bb:01';

interface Captured {
  hook: 'qemu' | 'network';
  args: string[];
  stdin: string;
}

function loadCaptured(): Captured[] {
  return readdirSync(libvirtHooksDir)
    .filter((f) => f.endsWith('.args'))
    .sort()
    .map((f) => {
      const base = f.slice(0, -'.args'.length);
      return {
        hook: base.includes('-qemu-') ? 'qemu' : 'network',
        args: readFileSync(join(libvirtHooksDir, f), 'utf8').split('\n').slice(0, 4),
        stdin: readFileSync(join(libvirtHooksDir, `${base}.stdin.xml`), 'utf8'),
      };
    });
}

/** The captured domain on virtnet's bridge with a fixed IP and one port forward (host 8022 → 22). */
function onVirtnet(c: Captured): string {
  if (c.hook === 'network') return c.stdin;
  const md = meta(
    `<virtnet:interface mac='${MAC}' ip='10.85.0.60'><virtnet:forward proto='tcp' host-port='8022' guest-port='22'/></virtnet:interface>`,
  );
  return c.stdin
    .replace("<interface type='network'>", "<interface type='bridge'>")
    .replace(/<source network='default'[^>]*\/>/, `<source bridge='${BRIDGE}'/>`)
    .replace('</uuid>', `</uuid>\n  <metadata>${md}</metadata>`);
}

describe.skipIf(skip)('repair through virtnetd: network rules and the hooks’ port forward', () => {
  let bus: PrivateBus;
  let host: Netns;
  let base: string;
  let dirs: { configDir: string; stateDir: string; runDir: string };
  let daemon: VirtnetdProcess | undefined;
  let mon: Monitor;
  let build: Transpiled;
  const calls = skip ? [] : loadCaptured();

  const ruleset = async () =>
    dropEmptyBuiltins((await host.exec(['nft', 'list', 'ruleset'])).stdout).replace(
      /counter packets \d+ bytes \d+/g,
      'counter',
    );
  const hook = (c: Captured) =>
    host.exec([join(projectRoot, 'hooks', c.hook), ...c.args], {
      input: onVirtnet(c),
      allowFail: true,
      timeoutMs: 60_000,
      env: {
        DBUS_SYSTEM_BUS_ADDRESS: bus.address,
        VIRTNET_HOOK_MAIN: build.hookMain,
        VIRTNET_CONFIG_DIR: dirs.configDir,
        VIRTNET_RUN_DIR: dirs.runDir,
      },
    });

  beforeAll(async () => {
    build = transpileSources();
    bus = await startPrivateBus();
    host = await createNetns('vr13-h');
    base = mkdtempSync(join(tmpdir(), 'vr13-'));
    chmodSync(base, 0o755);
    dirs = { configDir: join(base, 'networks'), stateDir: join(base, 'state'), runDir: join(base, 'run') };
    mkdirSync(dirs.configDir, { recursive: true });
    writeFileSync(join(dirs.configDir, `${NET}.xml`), NET_XML);
    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name, logLevel: 'info' });
    mon = await startMonitor(bus);
    const r = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Start']);
    expect(r.code, `${r.stderr}\n${daemon.output()}`).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await mon?.stop();
    await daemon?.stop('SIGTERM');
    cleanupAllNetns();
    await bus?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
    build?.remove();
  });

  it('nft flush ruleset: tables and the port forward back exactly, NetworkEvent repaired, one warning', async () => {
    for (const c of calls.slice(0, 7)) {
      const r = await hook(c);
      expect(r.exitCode, `${c.args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    const before = await ruleset();
    expect(before).toContain('dnat to 10.85.0.60:22');
    expect(before).toMatch(/table ip virtnet_/);
    const warned = () => (daemon!.output().match(/firewall rules repaired/g) ?? []).length;
    const w0 = warned();
    await host.exec(['nft', 'flush', 'ruleset']);
    await waitFor(async () => (await ruleset()) === before, 5000, 'ruleset back, port forward included');
    await mon.waitFor(
      (m) =>
        m.member === 'NetworkEvent' &&
        JSON.stringify(m.payload).includes('"repaired"') &&
        JSON.stringify(m.payload).includes(NET_PATH),
    );
    await sleep(300);
    expect(warned() - w0).toBe(1);
    expect(await ruleset()).toBe(before);
    for (const c of calls.slice(7)) {
      const r = await hook(c);
      expect(r.exitCode, `${c.args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    expect(await ruleset()).not.toContain('10.85.0.60');
    const stop = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Stop']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(await ruleset()).not.toMatch(/virtnet/);
  });
});
