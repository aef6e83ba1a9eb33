/**
 * VMs under real libvirtd + QEMU TCG (--with-libvirt): what a user feels.
 *  - `virsh start` of the same TCG domain (`<interface type='network'>`): on libvirt's own NAT network
 *    in a libvirtd without virtnet's hooks, vs on a virtnet network (published into libvirt by virtnetd,
 *    virtnet's hooks installed) — two sealed libvirtds, each in its own netns; and where the difference
 *    goes: the same virtnet domain with a no-op hook in place of virtnet's (what libvirt pays to run
 *    any hook), a bridge-mode libvirt network without hooks (libvirt's own cost of the published
 *    network's mode), each hook call's wall time as libvirtd runs it and the daemon's part of it;
 *  - `import-libvirt` of libvirt's NAT network with 10 running domains (busctl call ImportLibvirt),
 *    and the longest time any of their taps had no bridge (polled every few ms with `ip -o link`),
 *    then `revert-libvirt`.
 */
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
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

const KINDS = ['qemu', 'network'] as const;

export async function vmSection(o: VmSectionOptions, out: Sample[]): Promise<void> {
  const dirA = join(o.dir, 'a');
  const dirB = join(o.dir, 'b');
  mkdirSync(dirA, { recursive: true });
  mkdirSync(dirB, { recursive: true });
  const dB = {
    configDir: join(dirB, 'networks'),
    stateDir: join(dirB, 'state'),
    runDir: join(dirB, 'run'),
  };
  // libvirt B runs <dirB>/hook-{qemu,network}, symlinks switched between runs (libvirt needs the
  // hook to exist when it starts, and runs whatever the name points to at each call):
  //  - virtnet: virtnet's hook program;
  //  - noop: a hook that reads its stdin and exits 0 — libvirt's own cost of running a hook;
  //  - timed: virtnet's hook behind a wrapper that logs each call's wall time (for the breakdown only).
  const hookLog = join(dirB, 'hook-times.log');
  writeFileSync(join(dirB, 'noop'), '#!/bin/sh\nexec cat >/dev/null\n', { mode: 0o755 });
  for (const k of KINDS) {
    // The hook tells qemu from network by the path it is run as (…/qemu.d/…, …/network.d/…).
    mkdirSync(join(dirB, 'timed', `${k}.d`), { recursive: true });
    symlinkSync(join(packageRoot(), 'hooks', k), join(dirB, 'timed', `${k}.d`, 'virtnet'));
    writeFileSync(
      join(dirB, `timed-${k}`),
      `#!/bin/sh\nt0=$(date +%s%N)\n${join(dirB, 'timed', `${k}.d`, 'virtnet')} "$@"\nrc=$?\necho "${k} $2 $t0 $(date +%s%N) $rc" >>${hookLog}\nexit $rc\n`,
      { mode: 0o755 },
    );
  }
  const target = {
    virtnet: (k: string) => join(packageRoot(), 'hooks', k),
    noop: () => join(dirB, 'noop'),
    timed: (k: string) => join(dirB, `timed-${k}`),
  };
  const pointHooks = (to: keyof typeof target) => {
    for (const k of KINDS) {
      const tmp = join(dirB, `.hook-${k}`);
      symlinkSync(target[to](k), tmp);
      renameSync(tmp, join(dirB, `hook-${k}`));
    }
  };
  pointHooks('virtnet');
  const lvA = await startSealedLibvirtd({ netns: o.nsLibvirt.name, dir: dirA, bus: o.bus });
  o.onStarted(lvA);
  const lvB = await startSealedLibvirtd({
    netns: o.nsVirtnet.name,
    dir: dirB,
    bus: o.bus,
    hooks: { qemu: join(dirB, 'hook-qemu'), network: join(dirB, 'hook-network') },
    virtnetRunDir: dB.runDir,
  });
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
  mkdirSync(dB.configDir, { recursive: true });
  writeFileSync(join(dB.configDir, 'vnet.xml'), netXml('vnet', 'vh10vnbr0', '10.97.0'));
  const daemonB = await startVirtnetd({
    bus: o.bus,
    ...dB,
    netns: o.nsVirtnet.name,
    libvirt: lvB.uri,
    logLevel: 'debug',
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
    const onNoop: number[] = [];
    const startB = async () => {
      const ms = await timeRun(['virsh', '-c', lvB.uri, 'start', 'vh10-b']);
      await virsh(lvB, 'destroy', 'vh10-b');
      return ms;
    };
    // Warm-up once each (QEMU's first start pays for the page cache), then alternate.
    for (let r = -1; r < o.runs; r++) {
      const a = await timeRun(['virsh', '-c', lvA.uri, 'start', 'vh10-a']);
      await virsh(lvA, 'destroy', 'vh10-a');
      const c = await timeRun(['virsh', '-c', lvA.uri, 'start', 'vh10-c']);
      await virsh(lvA, 'destroy', 'vh10-c');
      pointHooks('virtnet');
      const b = await startB();
      pointHooks('noop');
      const nb = await startB();
      if (r >= 0) {
        onLibvirt.push(a);
        onBridge.push(c);
        onVirtnet.push(b);
        onNoop.push(nb);
      }
    }
    // The breakdown: each hook call's wall time as libvirtd runs it (timing wrapper), and the
    // daemon's own handling of it (its debug line "hook KIND OBJECT OP: X ms").
    pointHooks('timed');
    const daemonBefore = daemonB.output().length;
    for (let r = 0; r < o.runs; r++) await startB();
    pointHooks('virtnet');
    const wall = new Map<string, number[]>();
    for (const line of readFileSync(hookLog, 'utf8').split('\n')) {
      const [k, op, t0, t1, rc] = line.split(' ');
      if (!k || rc === undefined) continue;
      if (rc !== '0') throw new Error(`timed hook ${k} ${op} exited ${rc}`);
      const key = `${k} ${op}`;
      wall.set(key, [...(wall.get(key) ?? []), (Number(t1) - Number(t0)) / 1e6]);
    }
    const inDaemon = new Map<string, number[]>();
    for (const m of daemonB
      .output()
      .slice(daemonBefore)
      .matchAll(/hook (qemu|network) \S+ (\S+): ([\d.]+) ms/g))
      inDaemon.set(`${m[1]} ${m[2]}`, [...(inDaemon.get(`${m[1]} ${m[2]}`) ?? []), Number(m[3])]);
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
    out.push({
      key: 'vm.start.noop',
      what: "virsh start of the virtnet domain with a no-op hook in place of virtnet's (exec cat >/dev/null)",
      unit: 'ms',
      xs: onNoop,
    });
    out.push({
      key: 'vm.start.virtnet.noop',
      what: "the same virtnet starts, compared with the no-op hook: virtnet's share",
      unit: 'ms',
      xs: onVirtnet,
    });
    for (const [op, xs] of wall)
      out.push({
        key: `vm.hook.wall.${op.replace(' ', '.')}`,
        what: `hook ${op} at virsh start, wall time as libvirtd runs it (timing wrapper; 0 calls to the daemon if it ends in the shell)`,
        unit: 'ms',
        xs,
      });
    for (const [op, xs] of inDaemon)
      out.push({
        key: `vm.hook.daemon.${op.replace(' ', '.')}`,
        what: `hook ${op} at virsh start, the daemon's handling (its debug log)`,
        unit: 'ms',
        xs,
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
