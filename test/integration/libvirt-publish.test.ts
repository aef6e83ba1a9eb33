/**
 * Publishing into libvirt (issue 11, item 2) with Debian's real libvirtd 9.0, sealed in a vh8- netns:
 * virtnetd runs with `--libvirt URI` BEFORE libvirtd is up (pending, then published once it appears),
 * keeps a bridge-mode libvirt network of the same name and UUID active exactly while its own network is,
 * leaves a foreign libvirt network of the same name alone (and says so), and takes its copy out at
 * undefine. virtnet's hooks are installed, so libvirt's network hook runs while virtnetd waits for virsh.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { LIBVIRT_VIRTNET_TOOLS, type SealedLibvirt, startSealedLibvirtd } from '../helpers/libvirt.js';
import { cleanupAllNetns, createNetns, type Netns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const skip = missingPrereqs(LIBVIRT_VIRTNET_TOOLS);

const NET = 'vh8-pub';
const BRIDGE = 'vh8pubbr0';
const UUID = '5e1b0c3a-7d2f-4a8e-9c61-0a1b2c3d4e5f';
const NET_PATH = `${MANAGER_PATH}/network/vh8_2dpub`;
const NET_XML = `<network>
  <name>${NET}</name>
  <uuid>${UUID}</uuid>
  <forward mode='nat'/>
  <bridge name='${BRIDGE}' stp='off' delay='0'/>
  <ip address='10.92.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.92.0.100' end='10.92.0.200'/></dhcp>
  </ip>
</network>
`;
const FOREIGN = 'vh8-foreign';
const FOREIGN_XML = `<network>
  <name>${FOREIGN}</name>
  <uuid>0f0e0d0c-0b0a-4908-8706-050403020100</uuid>
  <bridge name='vh8fbr0'/>
</network>
`;

describe.skipIf(skip)('virtnetd publishes its networks into a real libvirtd (sealed, vh8- netns)', () => {
  let bus: PrivateBus;
  let host: Netns;
  let base: string;
  let dirs: { configDir: string; stateDir: string; runDir: string };
  let daemon: VirtnetdProcess | undefined;
  let lvd: SealedLibvirt | undefined;
  let uri: string;

  const prop = async (path: string, name: string) => {
    const r = await busctl(bus, ['--json=short', 'get-property', BUS_NAME, path, NETWORK_IFACE, name]);
    return r.code === 0 ? (JSON.parse(r.stdout).data as string) : `(error ${r.stderr.trim()})`;
  };
  const waitProp = async (path: string, name: string, ok: (v: string) => boolean, ms = 20_000) => {
    const until = Date.now() + ms;
    let v = '';
    while (Date.now() < until) {
      v = await prop(path, name);
      if (ok(v)) return v;
      await sleep(100);
    }
    throw new Error(`${path} ${name} is still '${v}'\n${daemon?.output().slice(-3000)}`);
  };
  const netState = async (name: string) => {
    const info = await lvd!.virsh('net-info', name);
    if (info.code !== 0) return undefined;
    const f = (k: string) => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(info.stdout)?.[1];
    const xml = (await lvd!.virsh('net-dumpxml', '--inactive', name)).stdout;
    return { active: f('Active') === 'yes', autostart: f('Autostart') === 'yes', xml };
  };
  const call = (path: string, iface: string, member: string, ...args: string[]) =>
    busctl(bus, ['call', BUS_NAME, path, iface, member, ...args]);

  beforeAll(async () => {
    bus = await startPrivateBus();
    host = await createNetns('vh8-pb');
    base = mkdtempSync(join(tmpdir(), 'vh8-pub-'));
    chmodSync(base, 0o755);
    dirs = { configDir: join(base, 'networks'), stateDir: join(base, 'state'), runDir: join(base, 'run') };
    mkdirSync(join(dirs.configDir, 'autostart'), { recursive: true });
    writeFileSync(join(dirs.configDir, `${NET}.xml`), NET_XML);
    uri = `qemu+unix:///system?socket=${join(base, 'libvirt')}/run/libvirt-sock`;
    // libvirt is not up yet: the daemon starts anyway and publishes once it is.
    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name, libvirt: uri });
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop('SIGTERM');
    cleanupAllNetns(); // ends libvirtd and dnsmasq: every pid in our namespace
    await bus?.stop();
    lvd?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('libvirt absent: Libvirt is pending; once libvirtd is up the network is published (defined, autostart)', async () => {
    // (First 'pending: not yet published', then the first attempt's answer.)
    expect(await waitProp(NET_PATH, 'Libvirt', (v) => /^pending: .*not reachable/.test(v))).toMatch(
      /not reachable/,
    );
    lvd = await startSealedLibvirtd({
      netns: host.name,
      dir: base,
      bus,
      hooks: { qemu: join(projectRoot, 'hooks', 'qemu'), network: join(projectRoot, 'hooks', 'network') },
    });
    expect(lvd.uri).toBe(uri);
    await waitProp(NET_PATH, 'Libvirt', (v) => v === 'published', 30_000);
    const st = await netState(NET);
    expect(st).toMatchObject({ active: false, autostart: true });
    expect(st!.xml).toContain(`<uuid>${UUID}</uuid>`);
    expect(st!.xml).toMatch(/<forward mode=['"]bridge['"]\s*\/>/);
    expect(st!.xml).toMatch(new RegExp(`<bridge name=['"]${BRIDGE}['"]\\s*/>`));
    const rec = JSON.parse(readFileSync(join(dirs.stateDir, 'libvirt-published.json'), 'utf8'));
    expect(rec).toEqual([{ name: NET, uuid: UUID, bridge: BRIDGE }]);
  }, 90_000);

  it("Start makes libvirt's copy active before the call returns; Stop makes it inactive", async () => {
    const s = await call(NET_PATH, NETWORK_IFACE, 'Start');
    expect(s.code, s.stderr).toBe(0);
    expect(await netState(NET)).toMatchObject({ active: true, autostart: true });
    const list = await lvd!.virsh('net-list', '--name');
    expect(list.stdout.split('\n').map((l) => l.trim())).toContain(NET);
    const p = await call(NET_PATH, NETWORK_IFACE, 'Stop');
    expect(p.code, p.stderr).toBe(0);
    expect(await netState(NET)).toMatchObject({ active: false, autostart: true });
    expect((await call(NET_PATH, NETWORK_IFACE, 'Start')).code).toBe(0);
    expect(await netState(NET)).toMatchObject({ active: true });
  }, 60_000);

  it('a daemon restart changes nothing in libvirt (the copy is recognised as its own)', async () => {
    const before = await netState(NET);
    await daemon!.stop('SIGTERM');
    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name, libvirt: uri });
    await waitProp(NET_PATH, 'Libvirt', (v) => v === 'published');
    expect(await netState(NET)).toEqual(before);
    expect(daemon.output()).not.toMatch(/libvirt: network vh8-pub published/);
  }, 60_000);

  it('a foreign libvirt network of the same name is left alone, and the property and log say so', async () => {
    writeFileSync(join(base, 'foreign.xml'), FOREIGN_XML);
    expect((await lvd!.virsh('net-define', join(base, 'foreign.xml'))).code).toBe(0);
    const before = await netState(FOREIGN);
    const xml = NET_XML.replaceAll(NET, FOREIGN)
      .replace(UUID, '11111111-2222-4333-8444-555555555555')
      .replace(BRIDGE, 'vh8pubbr1')
      .replaceAll('10.92.0.', '10.93.0.');
    const d = await call(MANAGER_PATH, MANAGER_IFACE, 'DefineNetwork', 's', xml);
    expect(d.code, d.stderr).toBe(0);
    const path = `${MANAGER_PATH}/network/vh8_2dforeign`;
    expect(await waitProp(path, 'Libvirt', (v) => v.startsWith('foreign:'))).toBe(
      'foreign: its UUID is 0f0e0d0c-0b0a-4908-8706-050403020100',
    );
    expect(await netState(FOREIGN)).toEqual(before);
    expect(daemon!.output()).toContain(
      `libvirt network ${FOREIGN} is not virtnet's (its UUID is 0f0e0d0c-0b0a-4908-8706-050403020100); left alone — run: virtnetctl import-libvirt ${FOREIGN}`,
    );
    expect((await call(path, NETWORK_IFACE, 'Undefine')).code).toBe(0);
    expect(await netState(FOREIGN)).toEqual(before);
  }, 60_000);

  it('Undefine takes the copy out of libvirt (also when it happened while the daemon was down)', async () => {
    expect((await call(NET_PATH, NETWORK_IFACE, 'Stop')).code).toBe(0);
    expect((await call(NET_PATH, NETWORK_IFACE, 'Undefine')).code).toBe(0);
    expect(await netState(NET)).toBeUndefined();

    // Defined again, published, then its file removed while virtnetd is down.
    writeFileSync(join(dirs.configDir, `${NET}.xml`), NET_XML);
    expect((await call(MANAGER_PATH, MANAGER_IFACE, 'Reload')).code).toBe(0);
    expect(await netState(NET)).toMatchObject({ active: false, autostart: true });
    await daemon!.stop('SIGTERM');
    rmSync(join(dirs.configDir, `${NET}.xml`));
    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name, libvirt: uri });
    const records = () => JSON.parse(readFileSync(join(dirs.stateDir, 'libvirt-published.json'), 'utf8'));
    const until = Date.now() + 20_000;
    while (((await netState(NET)) !== undefined || records().length) && Date.now() < until) await sleep(100);
    expect(await netState(NET)).toBeUndefined();
    // The record goes after the copy (a failed removal keeps it, to be retried).
    expect(records()).toEqual([]);
  }, 60_000);
});
