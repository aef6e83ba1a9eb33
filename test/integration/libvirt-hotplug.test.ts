/**
 * Hot-plug with the real libvirtd 9.0 + QEMU (TCG), sealed as in libvirt-e2e.test.ts, on the network
 * virtnetd publishes into libvirt (`--libvirt URI`: bridge mode, same name): `virsh
 * attach-interface DOMAIN network NAME --live` on a running domain fires only libvirt's network hook
 * (`port-created`), detach `port-deleted`. The NIC gets MAC + domain name in virtnet's dnsmasq; after
 * a guest reset its iPXE leases on that NIC, the domain's name resolves and GetLeasesWithDomains /
 * `virtnetctl leases` name the domain; detached, the entry is gone. A VM that starts on virtnet
 * (`type='network'`, metadata IP) gets a second NIC; libvirt's port-created at its start changes
 * nothing. Through the daemon, and with the daemon stopped (the in-process fallback), whose record a
 * restarted daemon then keeps. `virsh` answers throughout (no hook calls libvirt).
 *
 * The hooks are linked through small wrappers that only set the fallback's VIRTNET_CONFIG_DIR /
 * VIRTNET_RUN_DIR (libvirt clears the environment; the defaults are /etc/virtnet and /run/virtnet).
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUS_NAME,
  busctl,
  execOut,
  MANAGER_PATH,
  NETWORK_IFACE,
  type PrivateBus,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { LIBVIRT_VM_TOOLS, type SealedLibvirt, startSealedLibvirtd } from '../helpers/libvirt.js';
import { cleanupAllNetns, createNetns, type Netns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const skip = missingPrereqs([...LIBVIRT_VM_TOOLS, 'busybox']);

const NET = 'vh8-hp';
const BRIDGE = 'vh8hpbr0';
const NET_PATH = `${MANAGER_PATH}/network/vh8_2dhp`;
const NET_XML = `<network>
  <name>${NET}</name>
  <forward mode='nat'/>
  <bridge name='${BRIDGE}' stp='off' delay='0'/>
  <ip address='10.93.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.93.0.100' end='10.93.0.200'/></dhcp>
  </ip>
</network>
`;
const DOM = 'hp-vm';
const DOM2 = 'hp-vm2';
const MAC_0 = '52:54:00:93:00:01';
const IP_0 = '10.93.0.60';
const MAC_D = '52:54:00:93:00:0d';
const MAC_A = '52:54:00:93:00:0a';
const MAC_B = '52:54:00:93:00:0b';
const MAC_C = '52:54:00:93:00:0c';
/**
 * No NIC at start (so the qemu hook has nothing of virtnet's: the hot-plug makes the record). With no
 * bootable device SeaBIOS retries after a second, and a reset re-enumerates PCI: the hot-plugged NIC's
 * iPXE then asks for DHCP. ACPI: QEMU's i440fx bus hot-plugs through it.
 */
const DOMAIN_XML = `<domain type='qemu'>
  <name>${DOM}</name>
  <uuid>0b0e9a3c-93a0-4d1e-8e55-00000093000a</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/><bios rebootTimeout='1000'/></os>
  <features><acpi/></features>
  <devices>
    <serial type='null'/>
  </devices>
</domain>
`;

describe.skipIf(skip)('hot-plugged NICs with real libvirtd + QEMU (TCG), sealed in a vh8- netns', () => {
  let bus: PrivateBus;
  let host: Netns;
  let base: string;
  let dirs: { configDir: string; stateDir: string; runDir: string };
  let daemon: VirtnetdProcess | undefined;
  let lvd: SealedLibvirt | undefined;
  let virsh: SealedLibvirt['virsh'];

  const hostsfile = () => {
    try {
      return readFileSync(join(dirs.runDir, 'dnsmasq', `${NET}.hostsfile`), 'utf8');
    } catch {
      return '';
    }
  };
  const records = () => {
    try {
      return readFileSync(
        join(dirs.runDir, 'hooks', 'domains', '0b0e9a3c-93a0-4d1e-8e55-00000093000a.json'),
        'utf8',
      );
    } catch {
      return '';
    }
  };
  /** virsh answers (it would hang behind a hook that called libvirt). */
  const virshOk = async (...args: string[]) => {
    const r = await virsh(...args);
    expect(r.code, `virsh ${args.join(' ')}: ${r.stderr}\n${lvd!.log(1500)}`).toBe(0);
    return r.stdout;
  };
  const leaseOf = async (mac: string): Promise<string | undefined> => {
    for (let i = 0; i < 90; i++) {
      const r = await busctl(bus, ['--json=short', 'call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'GetLeases']);
      const leases = (JSON.parse(r.stdout || '{"data":[[]]}').data?.[0] ?? []) as [string, string][];
      const ip = leases.find(([m]) => m === mac)?.[1];
      if (ip) return ip;
      await sleep(500);
    }
    return undefined;
  };
  const resolve = async (name: string) =>
    (await host.exec(['busybox', 'nslookup', '-type=a', name, '10.93.0.1'], { allowFail: true })).stdout;

  beforeAll(async () => {
    bus = await startPrivateBus();
    host = await createNetns('vh8-hp');
    base = mkdtempSync(join(tmpdir(), 'vh8-hotplug-'));
    chmodSync(base, 0o755);
    dirs = { configDir: join(base, 'networks'), stateDir: join(base, 'state'), runDir: join(base, 'run') };
    mkdirSync(dirs.configDir, { recursive: true });
    writeFileSync(join(dirs.configDir, `${NET}.xml`), NET_XML);
    const wrap = join(base, 'hook-wrappers');
    mkdirSync(wrap);
    for (const kind of ['qemu', 'network']) {
      writeFileSync(
        join(wrap, kind),
        `#!/bin/sh\nexport VIRTNET_CONFIG_DIR='${dirs.configDir}' VIRTNET_RUN_DIR='${dirs.runDir}'\nexec '${join(projectRoot, 'hooks', kind)}' "$@"\n`,
        { mode: 0o755 },
      );
    }
    lvd = await startSealedLibvirtd({
      netns: host.name,
      dir: base,
      bus,
      hooks: { qemu: join(wrap, 'qemu'), network: join(wrap, 'network') },
    });
    virsh = lvd.virsh;
    // The daemon publishes the network into libvirt (bridge mode on its bridge, same name): what
    // `virsh attach-interface … network NAME` attaches to.
    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name, logLevel: 'debug', libvirt: lvd.uri });
    const st = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Start']);
    expect(st.code, `${st.stderr}\n${daemon.output()}`).toBe(0);
    for (let i = 0; i < 100 && !/Active:\s+yes/.test((await virsh('net-info', NET)).stdout); i++)
      await sleep(100);
    expect(await virshOk('net-dumpxml', NET)).toContain(`<forward mode='bridge'/>`);
    writeFileSync(join(base, 'domain.xml'), DOMAIN_XML);
    await virshOk('define', join(base, 'domain.xml'));
    await virshOk('start', DOM);
  }, 180_000);

  afterAll(async () => {
    for (const d of [DOM, DOM2]) {
      await virsh?.('destroy', d).catch(() => {});
      await virsh?.('undefine', d).catch(() => {});
    }
    await daemon?.stop('SIGTERM');
    cleanupAllNetns(); // ends libvirtd, QEMU and dnsmasq: every pid in our namespaces
    await bus?.stop();
    lvd?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('through the daemon: attach gives MAC + name, the guest leases on the new NIC and its name resolves', async () => {
    expect(hostsfile()).not.toContain(MAC_A);
    await virshOk('attach-interface', DOM, 'network', NET, '--mac', MAC_A, '--model', 'virtio', '--live');
    expect(hostsfile()).toContain(`${MAC_A},${DOM}\n`);
    expect(records()).toContain(MAC_A);
    expect(daemon!.output()).toMatch(new RegExp(`hook network ${NET} port-created: `)); // the daemon did it
    const tap = (await virshOk('domiflist', DOM)).match(/\b(vnet\d+)\b/)?.[1];
    expect(tap).toBeTruthy();
    const master = await host.exec(['cat', `/sys/class/net/${tap}/master/uevent`], { allowFail: true });
    expect(master.stdout).toContain(`INTERFACE=${BRIDGE}`);

    // The guest's firmware sees the NIC after a reset (no hook runs for it) and leases from virtnet.
    await virshOk('reset', DOM);
    const ip = await leaseOf(MAC_A);
    expect(ip, lvd!.log(1500)).toMatch(/^10\.93\.0\.(1\d\d|200)$/);
    expect(await resolve(DOM)).toContain(ip!);

    // The lease names the domain: on the bus, and in virtnetctl leases.
    const r = await busctl(bus, [
      '--json=short',
      'call',
      BUS_NAME,
      NET_PATH,
      NETWORK_IFACE,
      'GetLeasesWithDomains',
    ]);
    const rows = JSON.parse(r.stdout).data[0] as [string, string, string, number, string][];
    expect(rows.find(([mac]) => mac === MAC_A)).toEqual([
      MAC_A,
      ip,
      expect.any(String),
      expect.any(Number),
      DOM,
    ]);
    const cli = await execOut(
      [
        'node',
        '--import',
        join(projectRoot, 'test/helpers/ts-register.mjs'),
        join(projectRoot, 'src/bin/virtnetctl.ts'),
        'leases',
        NET,
      ],
      { env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: bus.address }, timeoutMs: 60_000 },
    );
    expect(cli.code, cli.stderr).toBe(0);
    expect(
      cli.stdout
        .split('\n')
        .find((l) => l.startsWith(MAC_A))
        ?.split(/\s+/),
    ).toEqual([MAC_A, ip, expect.any(String), DOM, expect.any(String), expect.any(String)]);
  }, 180_000);

  it('a VM started on virtnet (type=network, metadata IP) gets a second NIC; the port call at its start changed nothing', async () => {
    writeFileSync(
      join(base, 'vm2.xml'),
      DOMAIN_XML.replaceAll(DOM, DOM2)
        .replace('00000093000a', '00000093000b')
        .replace(
          '<devices>',
          `<metadata><virtnet:domain xmlns:virtnet="https://virtnet.org/xmlns/domain/1"><virtnet:interface mac='${MAC_0}' ip='${IP_0}'/></virtnet:domain></metadata>
  <devices>
    <interface type='network'><source network='${NET}'/><mac address='${MAC_0}'/><model type='virtio'/></interface>`,
        ),
    );
    await virshOk('define', join(base, 'vm2.xml'));
    const beforeStart = daemon!.output().length;
    await virshOk('start', DOM2);
    expect(
      hostsfile()
        .split('\n')
        .filter((l) => l.includes(MAC_0)),
    ).toEqual([`${MAC_0},${IP_0},${DOM2}`]);
    // The port call at its start ended in the hook (the domain's record says `prepared`: its qemu
    // hook does the work); the hot-plug below reaches the daemon.
    expect(daemon!.output().slice(beforeStart)).not.toContain(`hook network ${NET} port-created`);
    const beforePlug = daemon!.output().length;
    await virshOk('attach-interface', DOM2, 'network', NET, '--mac', MAC_D, '--model', 'virtio', '--live');
    expect(daemon!.output().slice(beforePlug)).toContain(`hook network ${NET} port-created`);
    expect(hostsfile()).toContain(`${MAC_D},${DOM2}\n`);
    expect(hostsfile()).toContain(`${MAC_0},${IP_0},${DOM2}\n`);
    expect(await leaseOf(MAC_0)).toBe(IP_0);
    const r = await busctl(bus, [
      '--json=short',
      'call',
      BUS_NAME,
      NET_PATH,
      NETWORK_IFACE,
      'GetLeasesWithDomains',
    ]);
    const rows = JSON.parse(r.stdout).data[0] as [string, string, string, number, string][];
    expect(rows.find(([mac]) => mac === MAC_0)?.[4]).toBe(DOM2);
    await virshOk('destroy', DOM2);
    expect(hostsfile()).not.toMatch(new RegExp(`${MAC_0}|${MAC_D}`));
    await virshOk('undefine', DOM2);
  }, 180_000);

  it('through the daemon: detach takes the entry out (a USB NIC: its unplug needs no guest OS)', async () => {
    // A PCI NIC's unplug waits for the guest's ACPI handling, which firmware alone does not do; a USB
    // NIC leaves at once, so libvirt deletes its port (port-deleted) within the detach call.
    let t0 = Date.now();
    await virshOk('attach-interface', DOM, 'network', NET, '--mac', MAC_C, '--model', 'usb-net', '--live');
    console.log(`virsh attach-interface (USB NIC), hook through the daemon: ${Date.now() - t0} ms`);
    expect(hostsfile()).toContain(`${MAC_C},${DOM}\n`);
    // A running type='network' NIC on a bridge-mode network reads type='bridge' in the live XML, and
    // virsh matches the type against that.
    t0 = Date.now();
    await virshOk('detach-interface', DOM, 'bridge', '--mac', MAC_C, '--live');
    console.log(`virsh detach-interface (USB NIC), hook through the daemon: ${Date.now() - t0} ms`);
    expect(await virshOk('domiflist', DOM)).not.toContain(MAC_C);
    expect(hostsfile()).not.toContain(MAC_C);
    expect(hostsfile()).toContain(`${MAC_A},${DOM}\n`);
    expect(records()).not.toContain(MAC_C);
    expect(records()).toContain(MAC_A);
  }, 60_000);

  it('with the daemon stopped the in-process fallback does the same; a restarted daemon keeps the entry; destroy removes every entry', async () => {
    expect(await daemon!.stop('SIGTERM')).toBe(0);
    daemon = undefined;
    let t0 = Date.now();
    await virshOk('attach-interface', DOM, 'network', NET, '--mac', MAC_B, '--model', 'usb-net', '--live');
    console.log(`virsh attach-interface (USB NIC), hook in-process (no daemon): ${Date.now() - t0} ms`);
    expect(hostsfile()).toContain(`${MAC_B},${DOM}\n`);
    expect(records()).toContain(MAC_B);
    t0 = Date.now();
    await virshOk('detach-interface', DOM, 'bridge', '--mac', MAC_B, '--live');
    console.log(`virsh detach-interface (USB NIC), hook in-process (no daemon): ${Date.now() - t0} ms`);
    expect(hostsfile()).not.toContain(MAC_B);
    await virshOk('attach-interface', DOM, 'network', NET, '--mac', MAC_B, '--model', 'usb-net', '--live');
    expect(hostsfile()).toContain(`${MAC_B},${DOM}\n`);

    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name, logLevel: 'debug', libvirt: lvd!.uri });
    expect(hostsfile()).toContain(`${MAC_B},${DOM}\n`);
    expect(hostsfile()).toContain(`${MAC_A},${DOM}\n`);
    // The domain stops with both hot-plugged NICs attached: the qemu hook's stop takes out both.
    await virshOk('destroy', DOM);
    expect(hostsfile()).not.toMatch(/52:54:00:93:00:0[ab]/);
    expect(records()).toBe('');
    await virshOk('undefine', DOM);
  }, 180_000);
});
