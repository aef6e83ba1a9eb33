/**
 * The facts `virtnetctl doctor` judges (src/firewall/doctor.ts), read from this host (the network
 * namespace virtnetd runs in): iptables' filter tables (only variants that exist: reading creates
 * nothing), nftables' base chains, firewalld's zone of the bridge, forwarding sysctls, routes and
 * addresses, inotify instances in use, and who else has a socket on UDP port 67.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import type { CommandRunner } from '../exec/runner.js';
import type { Network } from '../model/network.js';
import { NFT_COMPAT_TABLES, type NftBaseChain, parseNftBaseChains } from '../plan/firewall/compat.js';
import type { CompatLayer } from './compat.js';
import type { DoctorFacts } from './doctor.js';
import type { ZoneBinding, ZoneManager } from './firewalld.js';

async function read(path: string): Promise<string> {
  return (await readFile(path, 'utf8').catch(() => '')).trim();
}

async function json<T>(runner: CommandRunner, argv: string[]): Promise<T | undefined> {
  try {
    const r = await runner.run({ step: `doctor: ${argv.join(' ')}`, argv, allowFail: true });
    return r.exitCode === 0 ? (JSON.parse(r.stdout) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** pid → the targets of its fd links (unreadable processes skipped). */
async function fdTargets(): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  for (const p of pids) {
    const fds = await readdir(`/proc/${p}/fd`).catch(() => [] as string[]);
    const targets: string[] = [];
    for (const fd of fds) {
      const t = await readlink(`/proc/${p}/fd/${fd}`).catch(() => '');
      if (t) targets.push(t);
    }
    out.set(Number(p), targets);
  }
  return out;
}

/** Inodes of UDP sockets bound to port 67 (/proc/net/udp, udp6). */
async function dhcpInodes(): Promise<Set<string>> {
  const out = new Set<string>();
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    for (const line of (await read(f)).split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(':0043') && cols[9]) out.add(cols[9]);
    }
  }
  return out;
}

export async function gatherDoctorFacts(o: {
  runner: CommandRunner;
  net: Network;
  compat?: CompatLayer;
  zones?: ZoneManager;
  binding?: ZoneBinding;
  dnsmasqPid?: number;
}): Promise<DoctorFacts> {
  const br = o.net.bridge.name ?? '';
  const chains =
    (
      await json<{ nftables: { chain?: DoctorFacts['nftChains'][number] }[] }>(o.runner, [
        'nft',
        '-j',
        'list',
        'chains',
      ])
    )?.nftables.flatMap((x) => (x.chain ? [x.chain] : [])) ?? [];
  let nftRules: NftBaseChain[] = [];
  try {
    const r = await o.runner.run({
      step: 'doctor: nft -j list ruleset',
      argv: ['nft', '-j', 'list', 'ruleset'],
      allowFail: true,
    });
    if (r.exitCode === 0)
      nftRules = parseNftBaseChains(r.stdout).filter((c) => NFT_COMPAT_TABLES.has(c.table));
  } catch {
    // No nft: no native chains to look at.
  }
  const routes: DoctorFacts['routes'] = [];
  for (const fam of ['-4', '-6'])
    routes.push(
      ...((await json<DoctorFacts['routes']>(o.runner, [
        'ip',
        '-j',
        fam,
        'route',
        'show',
        'table',
        'main',
      ])) ?? []),
    );
  const links =
    (await json<{ ifname: string; addr_info?: { local: string; prefixlen: number; scope?: string }[] }[]>(
      o.runner,
      ['ip', '-j', 'addr', 'show'],
    )) ?? [];
  const addrs = links.flatMap((l) =>
    (l.addr_info ?? [])
      .filter((a) => a.scope !== 'link' && a.scope !== 'host')
      .map((a) => ({ ifname: l.ifname, local: a.local, prefixlen: a.prefixlen })),
  );
  const fds = await fdTargets();
  let used = 0;
  for (const t of fds.values()) used += t.filter((x) => x === 'anon_inode:inotify').length;
  const inodes = await dhcpInodes();
  const dhcpServers: DoctorFacts['dhcpServers'] = [];
  for (const [pid, t] of fds) {
    if (pid === o.dnsmasqPid || pid === process.pid) continue;
    if (t.some((x) => inodes.has(/^socket:\[(\d+)\]$/.exec(x)?.[1] ?? '')))
      dhcpServers.push({ pid, comm: await read(`/proc/${pid}/comm`) });
  }
  let running = false;
  let zone = '';
  if (o.zones) {
    running = await o.zones.running().catch(() => false);
    if (running && br) zone = await o.zones.zoneOf(br).catch(() => '');
  }
  return {
    net: o.net,
    ...(o.compat?.ownVariant ? { ownVariant: o.compat.ownVariant } : {}),
    iptables: o.compat ? await o.compat.saves() : [],
    nftChains: chains,
    nftRules,
    firewalld: { running, zone, ...(o.binding ? { binding: o.binding } : {}) },
    ipForward: {
      ipv4: await read('/proc/sys/net/ipv4/ip_forward'),
      ipv6: await read('/proc/sys/net/ipv6/conf/all/forwarding'),
    },
    routes,
    addrs,
    inotify: { limit: Number(await read('/proc/sys/fs/inotify/max_user_instances')) || 128, used },
    dhcpServers,
  };
}
