/**
 * `import-libvirt` / `revert-libvirt` (issue 11, item 3) with Debian's real libvirtd 9.0 + QEMU TCG,
 * sealed in a vh8- netns: a domain runs on libvirt's own NAT network `default` (libvirt's dnsmasq and
 * rules in the test's netns) and has a lease from it. After the import its tap is on virtnet's bridge,
 * libvirt's `default` is the bridge-mode copy with the old UUID, libvirt's dnsmasq is gone, virtnet's
 * serves and carries the lease; revert restores libvirt's XML byte for byte and the tap; kill -9 of the
 * daemon in the middle of an import, then import again, ends in the same state.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
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
import { type SealedLibvirt, startSealedLibvirtd } from '../helpers/libvirt.js';
import { cleanupAllNetns, createNetns, type Netns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const skip = missingPrereqs([
  'ip',
  'unshare',
  'libvirtd',
  'virsh',
  'qemu-system-x86_64',
  'dbus-daemon',
  'busctl',
  'dnsmasq',
  'nft',
  'iptables',
]);

const BRIDGE = 'vh8imbr0';
const UUID = '3c9f4a2e-1b7d-4e6a-8f05-d2c4b6a8e0f1';
// libvirt's own NAT network, as `virsh net-define` gets it on a fresh host (bridge renamed for the test).
const LV_DEFAULT = `<network>
  <name>default</name>
  <uuid>${UUID}</uuid>
  <forward mode='nat'/>
  <bridge name='${BRIDGE}' stp='on' delay='0'/>
  <mac address='52:54:00:94:00:01'/>
  <ip address='10.94.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.94.0.2' end='10.94.0.254'/>
    </dhcp>
  </ip>
</network>
`;
const VIRTNET_DEFAULT = LV_DEFAULT.replace(`  <uuid>${UUID}</uuid>\n`, '').replace(
  "  <mac address='52:54:00:94:00:01'/>\n",
  '',
);
const NET_PATH = `${MANAGER_PATH}/network/default`;
const DOM = 'vh8-im-vm';
const MAC = '52:54:00:94:00:05';
const DOMAIN_XML = `<domain type='qemu'>
  <name>${DOM}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices>
    <interface type='network'>
      <source network='default'/>
      <mac address='${MAC}'/>
      <model type='virtio'/>
    </interface>
    <serial type='null'/>
  </devices>
</domain>
`;

describe.skipIf(skip)(
  'import-libvirt / revert-libvirt with a running domain (real libvirtd + QEMU TCG, sealed)',
  () => {
    let bus: PrivateBus;
    let host: Netns;
    let base: string;
    let dirs: { configDir: string; stateDir: string; runDir: string };
    let daemon: VirtnetdProcess | undefined;
    let lvd: SealedLibvirt;
    let original = '';
    let ownDefault = '';
    let tap = '';

    const startDaemon = async () =>
      startVirtnetd({
        bus,
        ...dirs,
        netns: host.name,
        libvirt: lvd.uri,
        extraArgs: ['--libvirt-status-dir', join(lvd.root, 'lib', 'dnsmasq')],
      });
    const call = (member: string, ...args: string[]) =>
      busctl(bus, ['call', BUS_NAME, MANAGER_PATH, MANAGER_IFACE, member, ...args]);
    const masterOf = async (ifname: string) =>
      /master (\S+)/.exec((await host.exec(['ip', '-o', 'link', 'show', 'dev', ifname])).stdout)?.[1];
    const lvState = async () => {
      const info = (await lvd.virsh('net-info', 'default')).stdout;
      return {
        active: /^Active:\s*yes/m.test(info),
        autostart: /^Autostart:\s*yes/m.test(info),
        xml: (await lvd.virsh('net-dumpxml', '--inactive', 'default')).stdout,
      };
    };
    /** dnsmasq processes in our netns, by whose config they run. */
    const dnsmasqs = async () => {
      const pids = (await host.exec(['ip', 'netns', 'pids', host.name])).stdout.split('\n').filter(Boolean);
      const out: string[] = [];
      for (const p of pids) {
        try {
          const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
          if (cmd[0]?.endsWith('dnsmasq')) out.push(cmd.join(' '));
        } catch {}
      }
      return out;
    };
    const libvirtDnsmasq = async () =>
      (await dnsmasqs()).filter((c) => c.includes('/var/lib/libvirt/dnsmasq/'));
    const virtnetDnsmasq = async () => (await dnsmasqs()).filter((c) => c.includes(dirs.runDir));

    /** What "imported" means, checked the same way after every import. */
    const expectImported = async () => {
      expect(await masterOf(tap)).toBe(BRIDGE);
      const lv = await lvState();
      expect(lv.active).toBe(true);
      expect(lv.xml).toContain(`<uuid>${UUID}</uuid>`);
      expect(lv.xml).toMatch(/<forward mode=['"]bridge['"]\s*\/>/);
      expect(await libvirtDnsmasq()).toEqual([]);
      expect(await virtnetDnsmasq()).toHaveLength(1);
      const active = await busctl(bus, [
        '--json=short',
        'get-property',
        BUS_NAME,
        NET_PATH,
        NETWORK_IFACE,
        'Active',
      ]);
      expect(JSON.parse(active.stdout).data).toBe(true);
      const lib = await busctl(bus, [
        '--json=short',
        'get-property',
        BUS_NAME,
        NET_PATH,
        NETWORK_IFACE,
        'Libvirt',
      ]);
      expect(JSON.parse(lib.stdout).data).toBe('published');
      // The lease libvirt's dnsmasq gave the domain is virtnet's now.
      expect(readFileSync(join(dirs.runDir, 'dnsmasq', 'default.leases'), 'utf8')).toContain(MAC);
      // The virtnet definition is libvirt's XML: same uuid, bridge MAC and addresses.
      const xml = readFileSync(join(dirs.configDir, 'default.xml'), 'utf8');
      expect(xml).toContain(UUID);
      expect(xml).toContain('52:54:00:94:00:01');
      expect(existsSync(join(dirs.configDir, 'autostart', 'default.xml'))).toBe(true);
      // The running domain is registered through the hooks' port path: its name, and the lease's owner.
      expect(readFileSync(join(dirs.runDir, 'dnsmasq', 'default.hostsfile'), 'utf8')).toContain(
        `${MAC},${DOM}`,
      );
      const leases = await busctl(bus, [
        '--json=short',
        'call',
        BUS_NAME,
        NET_PATH,
        NETWORK_IFACE,
        'GetLeasesWithDomains',
      ]);
      expect(leases.stdout).toContain(`"${DOM}"`);
    };

    beforeAll(async () => {
      bus = await startPrivateBus();
      host = await createNetns('vh8-im');
      base = mkdtempSync(join(tmpdir(), 'vh8-imp-'));
      chmodSync(base, 0o755);
      dirs = { configDir: join(base, 'networks'), stateDir: join(base, 'state'), runDir: join(base, 'run') };
      mkdirSync(dirs.configDir, { recursive: true });
      // virtnet's own inactive 'default' (as the package installs it, no uuid): the import replaces it
      // and revert brings it back.
      writeFileSync(join(dirs.configDir, 'default.xml'), VIRTNET_DEFAULT);
      lvd = await startSealedLibvirtd({
        netns: host.name,
        dir: base,
        bus,
        hooks: { qemu: join(projectRoot, 'hooks', 'qemu'), network: join(projectRoot, 'hooks', 'network') },
      });
      writeFileSync(join(base, 'default.xml'), LV_DEFAULT);
      writeFileSync(join(base, 'domain.xml'), DOMAIN_XML);
      for (const args of [
        ['net-define', join(base, 'default.xml')],
        ['net-autostart', 'default'],
        ['net-start', 'default'],
        ['define', join(base, 'domain.xml')],
        ['start', DOM],
      ]) {
        const r = await lvd.virsh(...args);
        expect(r.code, `${args.join(' ')}: ${r.stderr}\n${lvd.log()}`).toBe(0);
      }
      original = (await lvd.virsh('net-dumpxml', '--inactive', 'default')).stdout;
      tap = /\b(vnet\d+)\b/.exec((await lvd.virsh('domiflist', DOM)).stdout)?.[1] ?? '';
      expect(tap).not.toBe('');
      // The domain's iPXE leases from libvirt's dnsmasq (libvirt's status file records it).
      const status = join(lvd.root, 'lib', 'dnsmasq', `${BRIDGE}.status`);
      for (let i = 0; i < 240 && !(existsSync(status) && readFileSync(status, 'utf8').includes(MAC)); i++)
        await sleep(500);
      expect(readFileSync(status, 'utf8')).toContain(MAC);
      daemon = await startDaemon();
      ownDefault = readFileSync(join(dirs.configDir, 'default.xml'), 'utf8');
      expect(ownDefault).not.toContain(UUID);
    }, 240_000);

    afterAll(async () => {
      await lvd?.virsh('destroy', DOM).catch(() => {});
      await daemon?.stop('SIGTERM');
      cleanupAllNetns(); // ends libvirtd, QEMU and both dnsmasqs: every pid in our namespace
      await bus?.stop();
      lvd?.stop();
      if (base) rmSync(base, { recursive: true, force: true });
    });

    it('a network virtnet cannot serve, or one libvirt does not have, is refused and nothing changes', async () => {
      const missing = await call('ImportLibvirt', 'ss', 'nosuch', '');
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain("has no network named 'nosuch'");
      writeFileSync(
        join(base, 'odd.xml'),
        "<network><name>vh8-odd</name><forward mode='hostdev' managed='yes'><pf dev='eth9'/></forward></network>",
      );
      expect((await lvd.virsh('net-define', join(base, 'odd.xml'))).code).toBe(0);
      const before = (await lvd.virsh('net-dumpxml', '--inactive', 'vh8-odd')).stdout;
      const odd = await call('ImportLibvirt', 'ss', 'vh8-odd', '');
      expect(odd.code).not.toBe(0);
      expect(odd.stderr).toMatch(/forward.*hostdev/);
      expect((await lvd.virsh('net-dumpxml', '--inactive', 'vh8-odd')).stdout).toBe(before);
      expect(existsSync(join(dirs.stateDir, 'libvirt-import', 'vh8-odd.json'))).toBe(false);
      expect((await lvd.virsh('net-undefine', 'vh8-odd')).code).toBe(0);
    }, 60_000);

    it('import: the running domain keeps its tap (now on virtnet), its lease; libvirt has the bridge-mode copy', async () => {
      const r = await call('ImportLibvirt', 'ss', 'default', '');
      expect(r.code, `${r.stderr}\n${daemon!.output().slice(-3000)}`).toBe(0);
      expect(r.stdout).toContain(NET_PATH);
      await expectImported();
      // Twice is a no-op.
      const again = await call('ImportLibvirt', 'ss', 'default', '');
      expect(again.code, again.stderr).toBe(0);
      await expectImported();
      // virsh keeps working with the domain on the published copy.
      expect((await lvd.virsh('domiflist', DOM)).stdout).toContain('default');
    }, 120_000);

    it('revert: libvirt gets its XML back byte for byte, its dnsmasq, and the tap', async () => {
      const r = await call('RevertLibvirt', 'ss', 'default', '');
      expect(r.code, `${r.stderr}\n${daemon!.output().slice(-3000)}`).toBe(0);
      const lv = await lvState();
      expect(lv.xml).toBe(original);
      expect(lv).toMatchObject({ active: true, autostart: true });
      expect(await masterOf(tap)).toBe(BRIDGE);
      // (libvirt's dnsmasq is two processes: dnsmasq and its dhcp-script helper)
      expect((await libvirtDnsmasq()).length).toBeGreaterThan(0);
      expect(await virtnetDnsmasq()).toEqual([]);
      // virtnet's own 'default' that the import replaced is back, inactive.
      expect(readFileSync(join(dirs.configDir, 'default.xml'), 'utf8')).toBe(ownDefault);
      const active = await busctl(bus, [
        '--json=short',
        'get-property',
        BUS_NAME,
        NET_PATH,
        NETWORK_IFACE,
        'Active',
      ]);
      expect(JSON.parse(active.stdout).data).toBe(false);
      expect(existsSync(join(dirs.stateDir, 'libvirt-import', 'default.json'))).toBe(false);
      // Its hook record went with the port (revert's port-deleted).
      expect(readdirSync(join(dirs.runDir, 'hooks', 'domains')).filter((f) => !f.startsWith('.'))).toEqual(
        [],
      );
      const gone = await call('RevertLibvirt', 'ss', 'default', '');
      expect(gone.stderr).toContain('was not imported');
    }, 120_000);

    it('kill -9 of the daemon in the middle of an import, then import again: the same end state', async () => {
      const journal = join(dirs.stateDir, 'libvirt-import', 'default.json');
      // Start an import, kill the daemon as soon as libvirt's copy went down (the bridge is gone).
      const pending = call('ImportLibvirt', 'ss', 'default', '');
      for (let i = 0; i < 400 && (await lvState()).active; i++) await sleep(10);
      daemon!.child.kill('SIGKILL');
      await pending;
      await daemon!.stop('SIGKILL').catch(() => {});
      expect(existsSync(journal)).toBe(true);
      daemon = await startDaemon();
      const r = await call('ImportLibvirt', 'ss', 'default', '');
      expect(r.code, `${r.stderr}\n${daemon.output().slice(-3000)}`).toBe(0);
      await expectImported();
      // And back, so libvirt is left as it was found.
      expect((await call('RevertLibvirt', 'ss', 'default', '')).code).toBe(0);
      expect((await lvState()).xml).toBe(original);
    }, 180_000);
  },
);
