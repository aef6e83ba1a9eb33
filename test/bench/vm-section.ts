/**
 * VMs under real libvirtd + QEMU TCG (--with-libvirt): what a user feels.
 *  - `virsh start` of the same TCG domain (`<interface type='network'>`): on libvirt's own NAT network
 *    in a libvirtd without virtnet's hooks, vs on a virtnet network (published into libvirt by virtnetd,
 *    virtnet's hooks installed) — two sealed libvirtds, each in its own netns;
 *  - `import-libvirt` of libvirt's NAT network with 10 running domains (busctl call ImportLibvirt),
 *    and the longest time any of their taps had no bridge (polled every few ms with `ip -o link`),
 *    then `revert-libvirt`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/util/package.js';
import { BUS_NAME, MANAGER_IFACE, MANAGER_PATH, NETWORK_IFACE, startVirtnetd } from '../helpers/dbus.js';
import { type SealedLibvirt, startSealedLibvirtd } from '../helpers/libvirt.js';
import type { Netns } from '../helpers/netns.js';
import type { PrivateBus } from '../helpers/private-bus.js';
import { mustRun, runCmd, type Sample, sleep, time, timeRun } from './lib.js';

export interface VmSectionOptions {
  bus: PrivateBus;
  /** libvirt's own network, no virtnet hooks (also where the import runs). */
  nsLibvirt: Netns;
  /** virtnet's network, hooks installed. */
  nsVirtnet: Netns;
  dir: string;
  runs: number;
  log: (s: string) => void;
  onStarted: (l: SealedLibvirt) => void;
}

const netXml = (name: string, bridge: string, net: string) => `<network>
  <name>${name}</name>
  <forward mode='nat'/>
  <bridge name='${bridge}' stp='on' delay='0'/>
  <ip address='${net}.1' netmask='255.255.255.0'>
    <dhcp><range start='${net}.2' end='${net}.254'/></dhcp>
  </ip>
</network>
`;
const domXml = (name: string, network: string, mac: string) => `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices>
    <interface type='network'><source network='${network}'/><mac address='${mac}'/><model type='virtio'/></interface>
    <serial type='null'/>
  </devices>
</domain>
`;

export async function vmSection(o: VmSectionOptions, out: Sample[]): Promise<void> {
  const hooks = {
    qemu: join(packageRoot(), 'hooks', 'qemu'),
    network: join(packageRoot(), 'hooks', 'network'),
  };
  const dirA = join(o.dir, 'a');
  const dirB = join(o.dir, 'b');
  mkdirSync(dirA, { recursive: true });
  mkdirSync(dirB, { recursive: true });
  const lvA = await startSealedLibvirtd({ netns: o.nsLibvirt.name, dir: dirA, bus: o.bus });
  o.onStarted(lvA);
  const lvB = await startSealedLibvirtd({ netns: o.nsVirtnet.name, dir: dirB, bus: o.bus, hooks });
  o.onStarted(lvB);
  const virsh = async (lv: SealedLibvirt, ...args: string[]) => {
    const r = await lv.virsh(...args);
    if (r.code !== 0) throw new Error(`virsh ${args.join(' ')}: ${r.stderr.trim()}\n${lv.log(1500)}`);
    return r.stdout;
  };

  // A: libvirt's own NAT network and a domain on it.
  writeFileSync(join(dirA, 'net.xml'), netXml('lvnat', 'vh10lvbr0', '10.96.0'));
  await virsh(lvA, 'net-define', join(dirA, 'net.xml'));
  await virsh(lvA, 'net-start', 'lvnat');
  writeFileSync(join(dirA, 'dom.xml'), domXml('vh10-a', 'lvnat', '52:54:00:96:00:02'));
  await virsh(lvA, 'define', join(dirA, 'dom.xml'));
  // A': a bridge-mode libvirt network on a bridge made by hand, no hooks: what the published network
  // costs libvirt itself, so B − A' is what virtnet's hooks add.
  await mustRun(['ip', 'netns', 'exec', o.nsLibvirt.name, 'ip', 'link', 'add', 'vh10brc', 'type', 'bridge']);
  await mustRun(['ip', 'netns', 'exec', o.nsLibvirt.name, 'ip', 'link', 'set', 'vh10brc', 'up']);
  writeFileSync(
    join(dirA, 'brnet.xml'),
    "<network><name>lvbr</name><forward mode='bridge'/><bridge name='vh10brc'/></network>\n",
  );
  await virsh(lvA, 'net-define', join(dirA, 'brnet.xml'));
  await virsh(lvA, 'net-start', 'lvbr');
  writeFileSync(join(dirA, 'domc.xml'), domXml('vh10-c', 'lvbr', '52:54:00:96:00:03'));
  await virsh(lvA, 'define', join(dirA, 'domc.xml'));

  // B: virtnetd publishes its network into libvirt B; the same domain on it.
  const dB = {
    configDir: join(dirB, 'networks'),
    stateDir: join(dirB, 'state'),
    runDir: join(dirB, 'run'),
  };
  mkdirSync(dB.configDir, { recursive: true });
  writeFileSync(join(dB.configDir, 'vnet.xml'), netXml('vnet', 'vh10vnbr0', '10.97.0'));
  const daemonB = await startVirtnetd({
    bus: o.bus,
    ...dB,
    netns: o.nsVirtnet.name,
    libvirt: lvB.uri,
    logLevel: 'info',
    compiledEntry: join(packageRoot(), 'dist', 'src', 'bin', 'virtnetd.js'),
  });
  try {
    await mustRun([
      'busctl',
      `--address=${o.bus.address}`,
      'call',
      BUS_NAME,
      `${MANAGER_PATH}/network/vnet`,
      NETWORK_IFACE,
      'Start',
    ]);
    writeFileSync(join(dirB, 'dom.xml'), domXml('vh10-b', 'vnet', '52:54:00:97:00:02'));
    await virsh(lvB, 'define', join(dirB, 'dom.xml'));

    const onLibvirt: number[] = [];
    const onBridge: number[] = [];
    const onVirtnet: number[] = [];
    // Warm-up once each (QEMU's first start pays for the page cache), then alternate.
    for (let r = -1; r < o.runs; r++) {
      const a = await timeRun(['virsh', '-c', lvA.uri, 'start', 'vh10-a']);
      await virsh(lvA, 'destroy', 'vh10-a');
      const c = await timeRun(['virsh', '-c', lvA.uri, 'start', 'vh10-c']);
      await virsh(lvA, 'destroy', 'vh10-c');
      const b = await timeRun(['virsh', '-c', lvB.uri, 'start', 'vh10-b']);
      await virsh(lvB, 'destroy', 'vh10-b');
      if (r >= 0) {
        onLibvirt.push(a);
        onBridge.push(c);
        onVirtnet.push(b);
      }
    }
    out.push({
      key: 'vm.start.libvirt',
      what: "virsh start, TCG domain on libvirt's own NAT network (no virtnet hooks)",
      unit: 'ms',
      xs: onLibvirt,
    });
    out.push({
      key: 'vm.start.bridge',
      what: 'virsh start, same domain on a bridge-mode libvirt network, no hooks',
      unit: 'ms',
      xs: onBridge,
    });
    out.push({
      key: 'vm.start.virtnet',
      what: "virsh start, same domain on a virtnet network (published, virtnet's hooks)",
      unit: 'ms',
      xs: onVirtnet,
    });
    out.push({
      key: 'vm.start.virtnet.hooks',
      what: 'the same virtnet starts, compared with a bridge-mode network without hooks',
      unit: 'ms',
      xs: onVirtnet,
    });
  } finally {
    await daemonB.stop('SIGTERM');
  }

  // Import of libvirt's NAT network with 10 running domains (virtnetd in A).
  const n = 10;
  for (let i = 0; i < n; i++) {
    const name = `vh10-m${i}`;
    writeFileSync(
      join(dirA, `${name}.xml`),
      domXml(name, 'lvnat', `52:54:00:96:01:${(16 + i).toString(16)}`),
    );
    await virsh(lvA, 'define', join(dirA, `${name}.xml`));
    await virsh(lvA, 'start', name);
  }
  const taps = (
    await Promise.all([...Array(n).keys()].map((i) => virsh(lvA, 'domiflist', `vh10-m${i}`)))
  ).map((s) => /\b(vnet\d+)\b/.exec(s)?.[1] ?? '');
  const dA = { configDir: join(dirA, 'networks'), stateDir: join(dirA, 'state'), runDir: join(dirA, 'run') };
  mkdirSync(dA.configDir, { recursive: true });
  const daemonA = await startVirtnetd({
    bus: o.bus,
    ...dA,
    netns: o.nsLibvirt.name,
    libvirt: lvA.uri,
    logLevel: 'info',
    compiledEntry: join(packageRoot(), 'dist', 'src', 'bin', 'virtnetd.js'),
    extraArgs: ['--libvirt-status-dir', join(lvA.root, 'lib', 'dnsmasq')],
  });
  try {
    const busctl = (member: string) => [
      'busctl',
      `--address=${o.bus.address}`,
      '--timeout=120',
      'call',
      BUS_NAME,
      MANAGER_PATH,
      MANAGER_IFACE,
      member,
      'ss',
      'lvnat',
      '',
    ];
    // The longest stretch any tap spent without a bridge, polled while `member` runs; and its time.
    const timedWithGap = async (member: string): Promise<[number, number]> => {
      let polling = true;
      let worst = 0;
      const poller = (async () => {
        const since = new Map<string, number>();
        while (polling) {
          const r = await runCmd(['ip', 'netns', 'exec', o.nsLibvirt.name, 'ip', '-o', 'link', 'show']);
          const now = performance.now();
          for (const t of taps) {
            const line = r.stdout.split('\n').find((l) => l.includes(` ${t}:`) || l.includes(` ${t}@`));
            const bridged = line !== undefined && / master \S+/.test(line);
            if (!bridged && !since.has(t)) since.set(t, now);
            if (bridged && since.has(t)) {
              worst = Math.max(worst, now - since.get(t)!);
              since.delete(t);
            }
          }
          await sleep(2);
        }
        for (const t0 of since.values()) worst = Math.max(worst, performance.now() - t0);
      })();
      const ms = await time(() => mustRun(busctl(member)));
      await sleep(50);
      polling = false;
      await poller;
      return [ms, worst];
    };
    const [importMs, worst] = await timedWithGap('ImportLibvirt');
    const [revertMs, revertGap] = await timedWithGap('RevertLibvirt');
    out.push({
      key: 'vm.import.10',
      what: `import-libvirt of libvirt's NAT network with ${n} running TCG domains (busctl call ImportLibvirt)`,
      unit: 'ms',
      xs: [importMs],
    });
    out.push({
      key: 'vm.import.gap',
      what: `longest time one of those ${n} taps had no bridge during the import (ip link polled every ~5 ms)`,
      unit: 'ms',
      xs: [worst],
    });
    out.push({
      key: 'vm.revert.gap',
      what: `longest time one of those ${n} taps had no bridge during the revert`,
      unit: 'ms',
      xs: [revertGap],
    });
    out.push({
      key: 'vm.revert.10',
      what: `revert-libvirt of it with the ${n} domains still running (busctl call RevertLibvirt)`,
      unit: 'ms',
      xs: [revertMs],
    });
    o.log(
      `vm: import ${importMs.toFixed(0)} ms, worst tap gap ${worst.toFixed(0)} ms, revert ${revertMs.toFixed(0)} ms`,
    );
    const own = /tap\(s\) back on a bridge after .*/.exec(daemonA.output())?.[0];
    if (own) o.log(`vm: virtnetd says: ${own}`);
  } finally {
    await daemonA.stop('SIGTERM');
  }
}
