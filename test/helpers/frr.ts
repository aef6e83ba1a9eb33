/**
 * Debian's FRR (zebra + bgpd) inside a test namespace, as a host would run it, but with every path
 * of its own: config, pid files, the zebra socket and the vty sockets under DIR (owned by user frr;
 * FRR drops to frr and must own its vty sockets). Runs in the foreground (the test reaps it);
 * namespace cleanup kills it too.
 */

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Netns, SpawnedProcess } from './netns.js';
import { sleep } from './netns.js';

export const FRR_TOOLS = ['/usr/lib/frr/zebra', '/usr/lib/frr/bgpd', 'vtysh'];

export interface Frr {
  dir: string;
  /** argv prefix for vtysh against this instance. */
  vtysh: string[];
  procs: SpawnedProcess[];
  stop(): Promise<void>;
}

function frrId(flag: '-u' | '-g'): number {
  return Number(execFileSync('id', [flag, 'frr'], { encoding: 'utf8' }).trim());
}

/** Start zebra and bgpd in `ns` with `bgpConf` (frr.conf syntax) as bgpd's configuration. */
export async function startFrr(ns: Netns, bgpConf: string): Promise<Frr> {
  // FRR drops to user frr: its directory must be reachable (the namespace's temp dir is 0700).
  chmodSync(ns.dir, 0o755);
  const dir = join(ns.dir, 'frr');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const uid = frrId('-u');
  const gid = frrId('-g');
  chownSync(dir, uid, gid);
  const zconf = join(dir, 'zebra.conf');
  const bconf = join(dir, 'bgpd.conf');
  writeFileSync(zconf, `hostname ${ns.name}\n`);
  writeFileSync(bconf, `frr defaults datacenter\nhostname ${ns.name}\n${bgpConf}`);
  for (const f of [zconf, bconf]) chownSync(f, uid, gid);
  const zsock = join(dir, 'zserv.api');
  const common = ['-u', 'frr', '-g', 'frr', '-P', '0', '--vty_socket', dir, '-z', zsock];
  const zebra = ns.spawn([
    '/usr/lib/frr/zebra',
    ...common,
    '-f',
    zconf,
    '-i',
    join(dir, 'zebra.pid'),
    '--log',
    `file:${join(dir, 'zebra.log')}`,
  ]);
  for (let i = 0; i < 200 && !existsSync(zsock); i++) await sleep(25);
  if (!existsSync(zsock)) throw new Error(`zebra in ${ns.name} did not start: ${zebra.output().stderr}`);
  const bgpd = ns.spawn([
    '/usr/lib/frr/bgpd',
    ...common,
    '-f',
    bconf,
    '-i',
    join(dir, 'bgpd.pid'),
    '--log',
    `file:${join(dir, 'bgpd.log')}`,
  ]);
  const vtysh = ['vtysh', '--vty_socket', dir];
  for (let i = 0; i < 200; i++) {
    const r = await ns.exec([...vtysh, '-c', 'show bgp l2vpn evpn vni json'], { allowFail: true });
    if (r.exitCode === 0 && r.stdout.includes('advertiseAllVnis')) break;
    await sleep(25);
  }
  const procs = [zebra, bgpd];
  return {
    dir,
    vtysh,
    procs,
    async stop() {
      for (const p of [bgpd, zebra]) {
        p.kill('SIGTERM');
        await Promise.race([p.exited, sleep(3000)]);
        p.kill('SIGKILL');
      }
    },
  };
}
