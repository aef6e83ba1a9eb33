import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUS_NAME,
  busctl,
  execOut,
  MANAGER_PATH,
  type Monitor,
  NETWORK_IFACE,
  type PrivateBus,
  startMonitor,
  startPrivateBus,
  startVirtnetd,
  type VirtnetdProcess,
} from '../helpers/dbus.js';
import { LIBVIRT_VM_TOOLS, type SealedLibvirt, startSealedLibvirtd } from '../helpers/libvirt.js';
import { cleanupAllNetns, createNetns, guestDhcp, link, type Netns, sleep } from '../helpers/netns.js';
import { missingPrereqs } from '../helpers/require.js';
import { projectRoot } from '../helpers/shared.js';

const skip = missingPrereqs([...LIBVIRT_VM_TOOLS, 'busybox', 'curl', 'virt-install']);

const NET = 'vh8-e2e';
const BRIDGE = 'vh8lvbr0';
const NET_PATH = `${MANAGER_PATH}/network/vh8_2de2e`;
const NET_XML = `<network>
  <name>${NET}</name>
  <forward mode='nat'/>
  <bridge name='${BRIDGE}' stp='off' delay='0'/>
  <ip address='10.91.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.91.0.100' end='10.91.0.200'/></dhcp>
  </ip>
</network>
`;
const DOM = 'vh8-e2e-vm';
const MAC = '52:54:00:91:00:05';
const IP = '10.91.0.50';
const DOMAIN_XML = `<domain type='qemu'>
  <name>${DOM}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <metadata>
    <virtnet:domain xmlns:virtnet="https://virtnet.org/xmlns/domain/1">
      <virtnet:interface mac='${MAC}' ip='${IP}'>
        <virtnet:forward proto='tcp' host-port='8080' guest-port='80'/>
      </virtnet:interface>
    </virtnet:domain>
  </metadata>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices>
    <interface type='bridge'>
      <source bridge='${BRIDGE}'/>
      <mac address='${MAC}'/>
      <model type='virtio'/>
    </interface>
    <serial type='null'/>
  </devices>
</domain>
`;

describe.skipIf(skip)('real libvirtd + QEMU (TCG) with virtnet hooks, sealed in a vh8- netns', () => {
  let bus: PrivateBus;
  let host: Netns;
  let base: string;
  let dirs: { configDir: string; stateDir: string; runDir: string };
  let daemon: VirtnetdProcess | undefined;
  let mon: Monitor;
  let lvd: SealedLibvirt | undefined;
  let virsh: (...args: string[]) => ReturnType<typeof execOut>;

  const hostsfile = () => {
    try {
      return readFileSync(join(dirs.runDir, 'dnsmasq', `${NET}.hostsfile`), 'utf8');
    } catch {
      return '';
    }
  };
  const ruleset = async () => (await host.exec(['nft', 'list', 'ruleset'])).stdout;

  beforeAll(async () => {
    bus = await startPrivateBus();
    host = await createNetns('vh8-lv');
    base = mkdtempSync(join(tmpdir(), 'vh8-e2e-'));
    chmodSync(base, 0o755);
    dirs = { configDir: join(base, 'networks'), stateDir: join(base, 'state'), runDir: join(base, 'run') };
    mkdirSync(dirs.configDir, { recursive: true });
    writeFileSync(join(dirs.configDir, `${NET}.xml`), NET_XML);
    daemon = await startVirtnetd({ bus, ...dirs, netns: host.name, logLevel: 'debug' });
    mon = await startMonitor(bus);
    const st = await busctl(bus, ['call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'Start']);
    expect(st.code, `${st.stderr}\n${daemon.output()}`).toBe(0);

    lvd = await startSealedLibvirtd({
      netns: host.name,
      dir: base,
      bus,
      hooks: { qemu: join(projectRoot, 'hooks', 'qemu'), network: join(projectRoot, 'hooks', 'network') },
      // The daemon's run dir at /run/virtnet, as installed: the hooks find daemon.busname and the
      // domains' records there (calls with nothing to do end in the hook).
      virtnetRunDir: dirs.runDir,
    });
    virsh = lvd.virsh;
  }, 180_000);

  afterAll(async () => {
    await virsh?.('destroy', DOM).catch(() => {});
    await virsh?.('undefine', DOM).catch(() => {});
    await mon?.stop();
    await daemon?.stop('SIGTERM');
    cleanupAllNetns(); // ends libvirtd, QEMU and dnsmasq: every pid in our namespaces
    await bus?.stop();
    lvd?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('virsh start: the hooks reserve the IP and add the forward; iPXE gets the reserved address from virtnet', async () => {
    writeFileSync(join(base, 'domain.xml'), DOMAIN_XML);
    const def = await virsh('define', join(base, 'domain.xml'));
    expect(def.code, def.stderr).toBe(0);
    const t0 = Date.now();
    const start = await virsh('start', DOM);
    const startMs = Date.now() - t0;
    expect(start.code, `${start.stderr}\n${lvd!.log()}`).toBe(0);
    console.log(`virsh start with virtnet's hooks: ${startMs} ms`);

    // What the hooks did, before the guest even asked.
    expect(hostsfile()).toContain(MAC);
    expect(hostsfile()).toContain(IP);
    expect(await ruleset()).toContain(`dnat to ${IP}:80`);
    const tap = (await virsh('domiflist', DOM)).stdout.match(/\b(vnet\d+)\b/)?.[1];
    expect(tap).toBeTruthy();
    await mon.waitFor(
      (m) => m.member === 'PortAttached' && m.path === NET_PATH && JSON.stringify(m).includes(DOM),
    );

    // The domain's iPXE asks for DHCP: virtnet's dnsmasq hands out the reserved address.
    let leases: unknown[] = [];
    for (let i = 0; i < 120; i++) {
      const r = await busctl(bus, ['--json=short', 'call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'GetLeases']);
      leases = (JSON.parse(r.stdout || '{"data":[[]]}').data?.[0] ?? []) as unknown[];
      if (leases.some((l) => JSON.stringify(l).includes(IP))) break;
      await sleep(500);
    }
    expect(JSON.stringify(leases)).toContain(MAC);
    expect(JSON.stringify(leases)).toContain(IP);
  }, 120_000);

  it('virsh destroy: everything the hooks added is gone', async () => {
    const r = await virsh('destroy', DOM);
    expect(r.code, r.stderr).toBe(0);
    expect(hostsfile()).not.toContain(MAC);
    expect(await ruleset()).not.toContain(IP);
    await mon.waitFor(
      (m) => m.member === 'PortDetached' && m.path === NET_PATH && JSON.stringify(m).includes(DOM),
    );
    expect(readdirSync(join(dirs.runDir, 'hooks', 'domains')).filter((f) => !f.startsWith('.'))).toEqual([]);
    const u = await virsh('undefine', DOM);
    expect(u.code, u.stderr).toBe(0);
  }, 60_000);

  it("VMs as virt-install makes them — no metadata, type='bridge' and type='network' — start, lease and resolve; a type='network' fixed IP from metadata", async () => {
    // The libvirt network of the virtnet network's name, bridge mode on its bridge: what lets
    // `<interface type='network'>` VMs run on virtnet (defined here by the test itself).
    writeFileSync(
      join(base, 'lvnet.xml'),
      `<network><name>${NET}</name><forward mode='bridge'/><bridge name='${BRIDGE}'/></network>`,
    );
    for (const args of [
      ['net-define', join(base, 'lvnet.xml')],
      ['net-start', NET],
    ]) {
      const r = await virsh(...args);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
    }
    const vm = (name: string, mac: string, iface: string, metadata = '') => `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>${metadata}
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices>
    ${iface.replace('MAC', mac)}
    <serial type='null'/>
  </devices>
</domain>
`;
    const bridgeIface = `<interface type='bridge'><source bridge='${BRIDGE}'/><mac address='MAC'/><model type='virtio'/></interface>`;
    const networkIface = `<interface type='network'><source network='${NET}'/><mac address='MAC'/><model type='virtio'/></interface>`;
    const FIXED = '10.91.0.77';
    const vms = [
      { name: 'plain-bridge', mac: '52:54:00:91:00:11', xml: bridgeIface },
      { name: 'plain-network', mac: '52:54:00:91:00:12', xml: networkIface },
      {
        name: 'fixed-network',
        mac: '52:54:00:91:00:13',
        xml: networkIface,
        meta: `<metadata><virtnet:domain xmlns:virtnet="https://virtnet.org/xmlns/domain/1"><virtnet:interface mac='52:54:00:91:00:13' ip='${FIXED}'/></virtnet:domain></metadata>`,
      },
    ];
    for (const v of vms) {
      writeFileSync(join(base, `${v.name}.xml`), vm(v.name, v.mac, v.xml, v.meta));
      const def = await virsh('define', join(base, `${v.name}.xml`));
      expect(def.code, def.stderr).toBe(0);
      const start = await virsh('start', v.name);
      expect(start.code, `${v.name}: ${start.stderr}\n${lvd!.log().slice(-2000)}`).toBe(0);
    }
    expect(hostsfile()).toContain('52:54:00:91:00:11,plain-bridge\n');
    expect(hostsfile()).toContain('52:54:00:91:00:12,plain-network\n');
    expect(hostsfile()).toContain(`52:54:00:91:00:13,${FIXED},fixed-network\n`);
    // The taps of the type='network' VMs are on virtnet's bridge.
    for (const v of vms) {
      const tap = (await virsh('domiflist', v.name)).stdout.match(/\b(vnet\d+)\b/)?.[1];
      expect(tap, v.name).toBeTruthy();
      const master = await host.exec(['cat', `/sys/class/net/${tap}/master/uevent`], { allowFail: true });
      expect(master.stdout, v.name).toContain(`INTERFACE=${BRIDGE}`);
    }

    // Each iPXE leases from virtnet's dnsmasq; the names resolve through it.
    const byMac = new Map<string, string>();
    for (let i = 0; i < 120 && byMac.size < vms.length; i++) {
      const r = await busctl(bus, ['--json=short', 'call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'GetLeases']);
      const leases = (JSON.parse(r.stdout || '{"data":[[]]}').data?.[0] ?? []) as [
        string,
        string,
        string,
        number,
      ][];
      for (const [mac, ip] of leases) byMac.set(mac, ip);
      if (byMac.size < vms.length) await sleep(500);
    }
    expect(byMac.get('52:54:00:91:00:13')).toBe(FIXED);
    for (const v of vms.slice(0, 2)) expect(byMac.get(v.mac), v.name).toMatch(/^10\.91\.0\.(1\d\d|200)$/);
    for (const v of vms) {
      const r = await host.exec(['busybox', 'nslookup', '-type=a', v.name, '10.91.0.1'], { allowFail: true });
      expect(r.stdout, `${v.name}: ${r.stderr}`).toContain(byMac.get(v.mac)!);
    }

    // A VM made by virt-install, as a user makes one (its defaults: type='network', no metadata).
    const vi = await execOut(
      [
        'virt-install',
        '--connect',
        lvd!.uri,
        '--name',
        'vi-vm',
        '--virt-type',
        'qemu',
        '--memory',
        '64',
        '--import',
        '--boot',
        'network',
        '--network',
        `network=${NET},mac=52:54:00:91:00:14`,
        '--disk',
        'none',
        '--osinfo',
        'generic',
        '--graphics',
        'none',
        '--noautoconsole',
      ],
      { timeoutMs: 120_000 },
    );
    expect(vi.code, `${vi.stdout}\n${vi.stderr}`).toBe(0);
    expect(hostsfile()).toContain('52:54:00:91:00:14,vi-vm\n');
    let viIp: string | undefined;
    for (let i = 0; i < 120 && !viIp; i++) {
      const r = await busctl(bus, ['--json=short', 'call', BUS_NAME, NET_PATH, NETWORK_IFACE, 'GetLeases']);
      const leases = (JSON.parse(r.stdout || '{"data":[[]]}').data?.[0] ?? []) as [string, string][];
      viIp = leases.find(([mac]) => mac === '52:54:00:91:00:14')?.[1];
      if (!viIp) await sleep(500);
    }
    expect(viIp).toMatch(/^10\.91\.0\./);

    for (const v of [...vms, { name: 'vi-vm' }]) {
      expect((await virsh('destroy', v.name)).code).toBe(0);
      expect((await virsh('undefine', v.name)).code).toBe(0);
    }
    expect(hostsfile()).not.toMatch(/52:54:00:91:00:1[1234]/);
    await virsh('net-destroy', NET);
    await virsh('net-undefine', NET);
  }, 180_000);

  it('a forward carries traffic, from the uplink and from the host, to a netns guest that listens on the port', async () => {
    // A netns stands in for a guest (veth named like a tap, enslaved as libvirt does for type='bridge');
    // libvirt's calls for it are made with the hook scripts, exactly as libvirtd made them above.
    const guest = await createNetns('vh8-lg');
    const uplink = await createNetns('vh8-lu');
    const GMAC = '52:54:00:91:00:06';
    const GIP = '10.91.0.52';
    await link(guest, 'eth0', host, 'vnet90', { macA: GMAC });
    await link(host, 'vh8up0', uplink, 'eth0');
    await host.addAddr('vh8up0', '10.92.0.1/24');
    await uplink.addAddr('eth0', '10.92.0.2/24');
    // The uplink knows the way to the guest subnet, so a direct connection is a real attempt.
    await uplink.addRoute('10.91.0.0/24', { via: '10.92.0.1' });
    const xml = (tap?: string) =>
      DOMAIN_XML.replaceAll(DOM, 'vh8-e2e-guest')
        .replaceAll(MAC, GMAC)
        .replaceAll(IP, GIP)
        .replace("host-port='8080'", "host-port='8081'")
        .replace(
          `<source bridge='${BRIDGE}'/>`,
          `<source bridge='${BRIDGE}'/>${tap ? `<target dev='${tap}'/>` : ''}`,
        )
        .replace('<name>', `<uuid>6d0c51a8-0000-4000-8000-000000000052</uuid><name>`);
    const hook = (op: string, x: string) =>
      host.exec(
        [
          join(projectRoot, 'hooks', 'qemu'),
          'vh8-e2e-guest',
          op,
          op.endsWith('ed') || op === 'release' ? 'end' : 'begin',
          '-',
        ],
        {
          input: x,
          allowFail: true,
          env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address },
        },
      );
    for (const [op, x] of [
      ['prepare', xml()],
      ['start', xml('vnet90')],
      ['started', xml('vnet90')],
    ] as const) {
      const r = await hook(op, x);
      expect(r.exitCode, `${op}: ${r.stderr}`).toBe(0);
    }
    await host.addPort(BRIDGE, 'vnet90'); // libvirt's part for type='bridge'
    const lease = await guestDhcp(guest, 'eth0', { tries: 10 });
    expect(lease.ip).toBe(GIP); // virtnet's reservation
    const www = mkdtempSync(join(base, 'www-'));
    writeFileSync(join(www, 'index.html'), 'guest\n');
    guest.spawn(['busybox', 'httpd', '-f', '-p', '80', '-h', www]);
    await sleep(300);
    const get = async (ns: Netns, url: string) => {
      const r = await ns.exec(['curl', '-sS', '-m', '3', url], { allowFail: true });
      return r.exitCode === 0 ? r.stdout.trim() : `failed (${r.exitCode}): ${r.stderr.trim()}`;
    };
    expect(await get(uplink, 'http://10.92.0.1:8081/')).toBe('guest');
    expect(await get(host, 'http://10.92.0.1:8081/')).toBe('guest');
    expect(await get(host, 'http://127.0.0.1:8081/')).toBe('guest');
    // Not forwarded: no way in.
    expect(await get(uplink, `http://${GIP}/`)).toMatch(/^failed/);
    for (const [op, x] of [
      ['stopped', xml()],
      ['release', xml()],
    ] as const) {
      const r = await hook(op, x);
      expect(r.exitCode, `${op}: ${r.stderr}`).toBe(0);
    }
    expect(await get(uplink, 'http://10.92.0.1:8081/')).toMatch(/^failed/);
    expect(hostsfile()).not.toContain(GMAC);
  }, 90_000);
});
