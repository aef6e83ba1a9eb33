/**
 * libvirt's network driver on the same XML, for the side-by-side figures: Debian's libvirtd sealed in a
 * netns and a mount namespace of its own (test/helpers/libvirt.ts), driven with `virsh` (one process
 * per operation, as `busctl call` is on virtnet's side): net-start, net-destroy, net-update … add /
 * delete ip-dhcp-host … --live, and one trivial call (net-list) as the client floor.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type SealedLibvirt, startSealedLibvirtd } from '../helpers/libvirt.js';
import type { Netns } from '../helpers/netns.js';
import type { PrivateBus } from '../helpers/private-bus.js';
import { DEFAULT_XML, type Sample, timeRun } from './lib.js';

export interface LibvirtSectionOptions {
  bus: PrivateBus;
  ns: Netns;
  dir: string;
  runs: number;
  log: (s: string) => void;
  /** Receives the sealed libvirtd as soon as it runs (the caller removes its mount points at the end). */
  onStarted: (l: SealedLibvirt) => void;
}

/** Measures into `out` as it goes (what was measured survives a failure later on). */
export async function libvirtSection(o: LibvirtSectionOptions, out: Sample[]): Promise<void> {
  const lv = await startSealedLibvirtd({ netns: o.ns.name, dir: o.dir, bus: o.bus });
  o.onStarted(lv);
  const virsh = async (...args: string[]) => {
    const r = await lv.virsh(...args);
    if (r.code !== 0)
      throw new Error(`virsh ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}\n${lv.log(1500)}`);
    return r.stdout;
  };
  /** One virsh process, timed by the shell timer (lib.ts timedRun), as a person's shell runs it. */
  const timeVirsh = (...args: string[]) => timeRun(['virsh', '-c', lv.uri, ...args]);
  const version =
    (await virsh('version')).match(/Running hypervisor: .*|Using library: .*/g)?.join('; ') ?? '';
  o.log(`libvirt: ${version}`);
  out.push({ key: 'libvirt.version', what: version, unit: 'ms', xs: [] });
  const xml = join(o.dir, 'default.xml');
  writeFileSync(xml, DEFAULT_XML);
  await virsh('net-define', xml);
  // Warm-up.
  await virsh('net-start', 'default');
  await virsh('net-destroy', 'default');
  const floor: number[] = [];
  const starts: number[] = [];
  const stops: number[] = [];
  for (let r = 0; r < o.runs; r++) {
    floor.push(await timeVirsh('net-list', '--name'));
    starts.push(await timeVirsh('net-start', 'default'));
    stops.push(await timeVirsh('net-destroy', 'default'));
  }
  out.push({
    key: 'libvirt.floor',
    what: 'one trivial call from a CLI (virsh net-list)',
    unit: 'ms',
    xs: floor,
  });
  out.push({ key: 'libvirt.start', what: 'virsh net-start', unit: 'ms', xs: starts });
  out.push({ key: 'libvirt.stop', what: 'virsh net-destroy', unit: 'ms', xs: stops });

  o.log('libvirt: net-update');
  await virsh('net-start', 'default');
  const adds: number[] = [];
  const dels: number[] = [];
  for (let r = 0; r < o.runs; r++) {
    const host = `<host mac='52:54:01:aa:00:${r.toString(16).padStart(2, '0')}' ip='192.168.122.${100 + r}' name='live${r}'/>`;
    adds.push(await timeVirsh('net-update', 'default', 'add', 'ip-dhcp-host', host, '--live'));
    dels.push(await timeVirsh('net-update', 'default', 'delete', 'ip-dhcp-host', host, '--live'));
  }
  out.push({ key: 'libvirt.add', what: 'virsh net-update add ip-dhcp-host --live', unit: 'ms', xs: adds });
  out.push({ key: 'libvirt.del', what: 'virsh net-update delete ip-dhcp-host --live', unit: 'ms', xs: dels });

  // Without the client's start-up: one virsh process runs K updates (`cmd; cmd; …`), and the same
  // process with one trivial call is subtracted: per update = (t(K updates) − t(net-list)) / K.
  o.log('libvirt: net-update in one virsh session');
  const K = 10;
  const sAdds: number[] = [];
  const sDels: number[] = [];
  for (let r = 0; r < Math.max(3, Math.ceil(o.runs / 2)); r++) {
    const hosts = Array.from(
      { length: K },
      (_, k) =>
        `<host mac='52:54:01:bb:${r.toString(16).padStart(2, '0')}:${k.toString(16).padStart(2, '0')}' ip='192.168.122.${150 + k}' name='s${r}x${k}'/>`,
    );
    const batch = (op: string) =>
      hosts.map((h) => `net-update default ${op} ip-dhcp-host "${h}" --live`).join(' ; ');
    const base = await timeVirsh('net-list --name');
    const tAdd = await timeVirsh(batch('add'));
    const tDel = await timeVirsh(batch('delete'));
    sAdds.push((tAdd - base) / K);
    sDels.push((tDel - base) / K);
  }
  out.push({
    key: 'libvirt.session.add',
    what: 'net-update add ip-dhcp-host --live, in one virsh session',
    unit: 'ms',
    xs: sAdds,
  });
  out.push({
    key: 'libvirt.session.del',
    what: 'net-update delete ip-dhcp-host --live, in one virsh session',
    unit: 'ms',
    xs: sDels,
  });
  await virsh('net-destroy', 'default');
}
