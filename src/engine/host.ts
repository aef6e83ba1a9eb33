/**
 * What the engine reads from the host before touching it: interfaces (/sys/class/net), routes
 * (/proc/net/route, /proc/net/ipv6_route) and a NIC's addresses and routes (`ip -j`). Reads only.
 * The engine runs in the namespace it manages, so these files are that namespace's.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import type { CommandRunner } from '../exec/runner.js';
import { formatIp } from '../model/ip.js';
import type { IpFamily } from '../model/network.js';
import type { NicState, ObservedAddr, ObservedRoute } from '../plan/links.js';

export interface HostRoute {
  family: IpFamily;
  dest: string;
  prefix: number;
  dev: string;
}

export interface HostProbe {
  linkExists(name: string): Promise<boolean>;
  isBridge(name: string): Promise<boolean>;
  /** The bridge an interface is a port of, if any. */
  masterOf(name: string): Promise<string | undefined>;
  links(): Promise<string[]>;
  routes(): Promise<HostRoute[]>;
  /** Interfaces whose IPv6 default route was learned from router advertisements. */
  raDefaultRouteDevs(): Promise<string[]>;
  nicState(name: string): Promise<NicState>;
}

/** /proc/net/route: little-endian hex dst and mask per line. */
export function parseProcRoute(text: string): HostRoute[] {
  const out: HostRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const le = (hex: string) => {
      const v = Number.parseInt(hex, 16) >>> 0;
      return (
        BigInt(((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) & 0xffffffffn
      );
    };
    const dst = le(f[1]!);
    const mask = le(f[7]!);
    let prefix = 0;
    for (let b = 31; b >= 0 && (mask >> BigInt(b)) & 1n; b--) prefix++;
    out.push({ family: 'ipv4', dest: formatIp('ipv4', dst), prefix, dev: f[0]! });
  }
  return out;
}

/** /proc/net/ipv6_route: dst(32 hex) dstlen(hex) src srclen nexthop metric refcnt use flags dev. */
export function parseProcIpv6Route(text: string): HostRoute[] {
  const out: HostRoute[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^[0-9a-f]{32}$/.test(f[0]!)) continue;
    out.push({
      family: 'ipv6',
      dest: formatIp('ipv6', BigInt(`0x${f[0]}`)),
      prefix: Number.parseInt(f[1]!, 16),
      dev: f[9]!,
    });
  }
  return out;
}

interface IpJsonAddr {
  ifname: string;
  address: string;
  mtu: number;
  addr_info: { family: string; local: string; prefixlen: number; broadcast?: string; scope: string }[];
}
interface IpJsonRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  protocol?: string;
  prefsrc?: string;
}

export class LinuxHostProbe implements HostProbe {
  constructor(
    private readonly runner: CommandRunner,
    private readonly sysfs = '/sys/class/net',
    private readonly procNet = '/proc/net',
  ) {}

  async linkExists(name: string): Promise<boolean> {
    return stat(`${this.sysfs}/${name}`).then(
      () => true,
      () => false,
    );
  }

  async isBridge(name: string): Promise<boolean> {
    return stat(`${this.sysfs}/${name}/bridge`).then(
      () => true,
      () => false,
    );
  }

  async masterOf(name: string): Promise<string | undefined> {
    try {
      const { readlink } = await import('node:fs/promises');
      const target = await readlink(`${this.sysfs}/${name}/master`);
      return target.split('/').pop();
    } catch {
      return undefined;
    }
  }

  async links(): Promise<string[]> {
    return readdir(this.sysfs);
  }

  async routes(): Promise<HostRoute[]> {
    const v4 = await readFile(`${this.procNet}/route`, 'utf8').catch(() => '');
    const v6 = await readFile(`${this.procNet}/ipv6_route`, 'utf8').catch(() => '');
    return [...parseProcRoute(v4), ...parseProcIpv6Route(v6)];
  }

  async raDefaultRouteDevs(): Promise<string[]> {
    const r = await this.runner.run({
      step: 'conflicts: IPv6 routes learned from RAs',
      argv: ['ip', '-j', '-6', 'route', 'show', 'default', 'proto', 'ra'],
      allowFail: true,
    });
    if (r.exitCode !== 0) return [];
    const routes = JSON.parse(r.stdout || '[]') as { dev?: string; nexthops?: { dev?: string }[] }[];
    const devs = new Set<string>();
    for (const rt of routes) {
      if (rt.dev) devs.add(rt.dev);
      for (const nh of rt.nexthops ?? []) if (nh.dev) devs.add(nh.dev);
    }
    return [...devs];
  }

  async nicState(name: string): Promise<NicState> {
    const step = `enslave: read the state of ${name}`;
    const a = await this.runner.run({ step, argv: ['ip', '-j', 'addr', 'show', 'dev', name] });
    const info = (JSON.parse(a.stdout) as IpJsonAddr[])[0];
    if (!info) throw new Error(`${step}: no such interface`);
    const addrs: ObservedAddr[] = info.addr_info
      .filter((x) => x.scope === 'global' && (x.family === 'inet' || x.family === 'inet6'))
      .map((x) => ({
        family: x.family === 'inet' ? 'ipv4' : 'ipv6',
        address: x.local,
        prefix: x.prefixlen,
        ...(x.broadcast ? { broadcast: x.broadcast } : {}),
      }));
    const routes: ObservedRoute[] = [];
    for (const fam of ['-4', '-6'] as const) {
      const r = await this.runner.run({ step, argv: ['ip', '-j', fam, 'route', 'show', 'dev', name] });
      for (const rt of JSON.parse(r.stdout || '[]') as IpJsonRoute[]) {
        // Prefix routes follow the addresses; link-local and multicast stay with the kernel.
        if (rt.protocol === 'kernel' || rt.dst.startsWith('fe80:') || rt.dst.startsWith('ff00:')) continue;
        const extra: string[] = [];
        if (rt.protocol && rt.protocol !== 'boot') extra.push('proto', rt.protocol);
        if (rt.prefsrc) extra.push('src', rt.prefsrc);
        routes.push({
          family: fam === '-4' ? 'ipv4' : 'ipv6',
          dest: rt.dst,
          ...(rt.gateway ? { via: rt.gateway } : {}),
          ...(rt.metric !== undefined ? { metric: rt.metric } : {}),
          ...(extra.length ? { extra } : {}),
        });
      }
    }
    return { name, mac: info.address, mtu: info.mtu, addrs, routes };
  }
}
