/**
 * The links a network needs, as data (pure: no I/O). An executor applies the ops in one
 * `ip -batch -` (see `renderIpBatch`) and the sysctls by writing /proc/sys.
 *
 * What libvirt does for a virtual network (nat, route, open, isolated), re-stated:
 * - a bridge with STP and forward delay as defined, its MAC set explicitly (the kernel then keeps it
 *   when ports come and go — the reason libvirt ≥ 5.x stopped making a `<bridge>-nic` tap; the tap is
 *   available here as an option), the MTU when given;
 * - each `<ip>` address on the bridge (IPv6 with `nodad`, as libvirt does, so it is usable at once);
 * - each `<route>` through its gateway;
 * - IP forwarding when the network forwards (nat/route/open), per family present;
 * - on the bridge: IPv6 disabled when the network has no IPv6 (and not `ipv6='yes'`); otherwise
 *   enabled with `accept_ra=0` and `autoconf=0`, so guests cannot reconfigure the host with RAs.
 *
 * Bridge mode without enslaving plans nothing: the bridge belongs to the host.
 */
import { broadcastAddress, cidr } from '../model/ip.js';
import type { IpFamily, Network } from '../model/network.js';

export type LinkOp =
  | {
      kind: 'bridge-add';
      name: string;
      mac?: string;
      stp: boolean;
      /** In centiseconds, as the kernel takes it. */
      forwardDelay: number;
    }
  | { kind: 'tap-add'; name: string }
  | {
      kind: 'link-set';
      name: string;
      address?: string;
      mtu?: number;
      /** A bridge name, or null for `nomaster`. */
      master?: string | null;
      up?: boolean;
      down?: boolean;
    }
  | {
      kind: 'addr-add' | 'addr-del';
      dev: string;
      family: IpFamily;
      address: string;
      prefix: number;
      broadcast?: string;
      nodad?: boolean;
    }
  | {
      kind: 'route-add' | 'route-del';
      family: IpFamily;
      /** Destination in CIDR form, or 'default'. */
      dest: string;
      via?: string;
      dev?: string;
      metric?: number;
      /** Extra verbatim ip-route attributes observed on a host route (proto, src…), already split. */
      extra?: string[];
    }
  | { kind: 'link-del'; name: string }
  | {
      kind: 'bridge-set';
      name: string;
      stp: boolean;
      /** In centiseconds, as the kernel takes it. */
      forwardDelay: number;
    };

export interface Sysctl {
  /** Dotted key, e.g. `net.ipv4.ip_forward` or `net.ipv6.conf.virbr0.accept_ra`. */
  key: string;
  value: string;
}

export interface LinksPlanOptions {
  /** Also create the `<bridge>-nic` tap (libvirt < 5.x) to pin the MAC. Default false. */
  macTap?: boolean;
}

export interface LinksPlan {
  ops: LinkOp[];
  /** Host-wide sysctls the network needs (to be restored on stop). */
  sysctls: Sysctl[];
  /** Sysctls of the bridge itself (they vanish with the bridge; applied right after it is created). */
  bridgeSysctls: Sysctl[];
}

/** The MAC-pinning tap's name (`virbr0-nic`), truncated like libvirt to fit IFNAMSIZ. */
export function macTapName(bridge: string): string {
  const suffix = '-nic';
  return bridge.length + suffix.length > 15
    ? `${bridge.slice(0, 15 - suffix.length)}${suffix}`
    : bridge + suffix;
}

/** True when the network's bridge is created and removed by virtnet. */
export function createsBridge(net: Network): boolean {
  return net.forward.mode !== 'bridge' || Boolean(net.bridge.enslave);
}

function requireBridge(net: Network): string {
  const name = net.bridge.name;
  if (!name) throw new Error(`network ${net.name}: no bridge name (applyDefaults must run first)`);
  return name;
}

/** Delay in centiseconds. With STP on the kernel refuses less than 2 s, so ask for at least that. */
function forwardDelayCs(net: Network): number {
  const cs = Math.round((net.bridge.delay ?? 0) * 100);
  return net.bridge.stp === false ? cs : Math.max(cs, 200);
}

/** Forwarding sysctls: what a forwarding network needs host-wide. */
export function planSysctls(net: Network): Sysctl[] {
  const mode = net.forward.mode;
  if (mode !== 'nat' && mode !== 'route' && mode !== 'open') return [];
  const out: Sysctl[] = [];
  if (net.ips.some((ip) => ip.family === 'ipv4')) out.push({ key: 'net.ipv4.ip_forward', value: '1' });
  if (net.ips.some((ip) => ip.family === 'ipv6'))
    out.push({ key: 'net.ipv6.conf.all.forwarding', value: '1' });
  return out;
}

export function planBridgeSysctls(net: Network): Sysctl[] {
  const br = requireBridge(net);
  const hasV6 = net.ips.some((ip) => ip.family === 'ipv6');
  if (!hasV6 && !net.ipv6) return [{ key: `net.ipv6.conf.${br}.disable_ipv6`, value: '1' }];
  return [
    { key: `net.ipv6.conf.${br}.disable_ipv6`, value: '0' },
    { key: `net.ipv6.conf.${br}.accept_ra`, value: '0' },
    { key: `net.ipv6.conf.${br}.autoconf`, value: '0' },
  ];
}

/** Everything to bring a virtual network's links up. Bridge mode (host bridge) plans nothing. */
export function planLinksUp(net: Network, opts: LinksPlanOptions = {}): LinksPlan {
  if (net.forward.mode === 'bridge') return { ops: [], sysctls: [], bridgeSysctls: [] };
  const br = requireBridge(net);
  const ops: LinkOp[] = [];
  ops.push({
    kind: 'bridge-add',
    name: br,
    ...(net.mac ? { mac: net.mac } : {}),
    stp: net.bridge.stp !== false,
    forwardDelay: forwardDelayCs(net),
  });
  if (opts.macTap && net.mac) {
    const tap = macTapName(br);
    ops.push({ kind: 'tap-add', name: tap });
    ops.push({ kind: 'link-set', name: tap, address: net.mac, master: br });
  }
  if (net.mtu) ops.push({ kind: 'link-set', name: br, mtu: net.mtu });
  for (const ip of net.ips) {
    ops.push({
      kind: 'addr-add',
      dev: br,
      family: ip.family,
      address: ip.address,
      prefix: ip.prefix,
      ...(ip.family === 'ipv4' && ip.prefix < 31
        ? { broadcast: broadcastAddress(ip.address, ip.prefix) }
        : {}),
      ...(ip.family === 'ipv6' ? { nodad: true } : {}),
    });
  }
  ops.push({ kind: 'link-set', name: br, up: true });
  for (const r of net.routes) {
    ops.push({
      kind: 'route-add',
      family: r.family,
      dest: cidr(r.address, r.prefix),
      via: r.gateway,
      dev: br,
      ...(r.metric !== undefined ? { metric: r.metric } : {}),
    });
  }
  return { ops, sysctls: planSysctls(net), bridgeSysctls: planBridgeSysctls(net) };
}

/** Removing the bridge removes its addresses and routes with it. */
export function planLinksDown(net: Network, opts: LinksPlanOptions = {}): LinkOp[] {
  if (net.forward.mode === 'bridge') return [];
  const br = requireBridge(net);
  const ops: LinkOp[] = [];
  if (opts.macTap && net.mac) ops.push({ kind: 'link-del', name: macTapName(br) });
  ops.push({ kind: 'link-del', name: br });
  return ops;
}

/** An address a NIC has now (as observed), for moving it onto a bridge. */
export interface ObservedAddr {
  family: IpFamily;
  address: string;
  prefix: number;
  broadcast?: string;
}

/** A route through a NIC (as observed). */
export interface ObservedRoute {
  family: IpFamily;
  dest: string;
  via?: string;
  metric?: number;
  extra?: string[];
}

export interface NicState {
  name: string;
  mac: string;
  mtu: number;
  addrs: ObservedAddr[];
  /** Routes to move, excluding the kernel's prefix routes (they follow the addresses). */
  routes: ObservedRoute[];
}

/**
 * Virtnet extension (bridge mode with `enslave`): create the bridge with the NIC's MAC and MTU,
 * enslave the NIC and move its addresses and routes onto the bridge — one batch.
 */
export function planEnslave(net: Network, nic: NicState): LinkOp[] {
  const br = requireBridge(net);
  const ops: LinkOp[] = [
    {
      kind: 'bridge-add',
      name: br,
      mac: net.mac ?? nic.mac,
      stp: net.bridge.stp === true,
      forwardDelay: net.bridge.stp === true ? forwardDelayCs(net) : Math.round((net.bridge.delay ?? 0) * 100),
    },
    { kind: 'link-set', name: br, mtu: net.mtu ?? nic.mtu },
  ];
  for (const a of nic.addrs) ops.push({ kind: 'addr-del', dev: nic.name, ...a });
  ops.push({ kind: 'link-set', name: nic.name, master: br });
  for (const a of nic.addrs)
    ops.push({ kind: 'addr-add', dev: br, ...a, ...(a.family === 'ipv6' ? { nodad: true } : {}) });
  ops.push({ kind: 'link-set', name: br, up: true });
  for (const r of nic.routes) ops.push({ kind: 'route-add', ...r, dev: br });
  return ops;
}

/** The reverse of `planEnslave`: addresses and routes back on the NIC, bridge removed. */
export function planRelease(net: Network, nic: NicState): LinkOp[] {
  const br = requireBridge(net);
  const ops: LinkOp[] = [];
  for (const a of nic.addrs) ops.push({ kind: 'addr-del', dev: br, ...a });
  ops.push({ kind: 'link-set', name: nic.name, master: null });
  ops.push({ kind: 'link-set', name: br, down: true });
  ops.push({ kind: 'link-del', name: br });
  for (const a of nic.addrs)
    ops.push({ kind: 'addr-add', dev: nic.name, ...a, ...(a.family === 'ipv6' ? { nodad: true } : {}) });
  ops.push({ kind: 'link-set', name: nic.name, up: true });
  for (const r of nic.routes) ops.push({ kind: 'route-add', ...r, dev: nic.name });
  return ops;
}

/** `ip -batch` takes no per-line options (`-6`): the family comes from the addresses themselves. */
function routeDest(family: IpFamily, dest: string): string {
  if (dest !== 'default') return dest;
  return family === 'ipv6' ? '::/0' : '0.0.0.0/0';
}

/** One `ip` command line (without the leading `ip`) for an op. */
export function renderIpOp(op: LinkOp): string {
  switch (op.kind) {
    case 'bridge-add':
      return `link add name ${op.name}${op.mac ? ` address ${op.mac}` : ''} type bridge stp_state ${op.stp ? 1 : 0} forward_delay ${op.forwardDelay}`;
    case 'tap-add':
      return `tuntap add dev ${op.name} mode tap`;
    case 'link-set': {
      const parts = [`link set dev ${op.name}`];
      if (op.address) parts.push(`address ${op.address}`);
      if (op.mtu !== undefined) parts.push(`mtu ${op.mtu}`);
      if (op.master === null) parts.push('nomaster');
      else if (op.master) parts.push(`master ${op.master}`);
      if (op.up) parts.push('up');
      if (op.down) parts.push('down');
      return parts.join(' ');
    }
    case 'addr-add':
    case 'addr-del': {
      const verb = op.kind === 'addr-add' ? 'add' : 'del';
      let s = `addr ${verb} ${op.address}/${op.prefix}`;
      if (op.kind === 'addr-add' && op.broadcast) s += ` broadcast ${op.broadcast}`;
      s += ` dev ${op.dev}`;
      if (op.kind === 'addr-add' && op.nodad) s += ' nodad';
      return s;
    }
    case 'route-add':
    case 'route-del': {
      const verb = op.kind === 'route-add' ? 'add' : 'del';
      let s = `route ${verb} ${routeDest(op.family, op.dest)}`;
      if (op.via) s += ` via ${op.via}`;
      if (op.dev) s += ` dev ${op.dev}`;
      if (op.metric !== undefined) s += ` metric ${op.metric}`;
      if (op.extra?.length) s += ` ${op.extra.join(' ')}`;
      return s;
    }
    case 'link-del':
      return `link del dev ${op.name}`;
    case 'bridge-set':
      return `link set dev ${op.name} type bridge stp_state ${op.stp ? 1 : 0} forward_delay ${op.forwardDelay}`;
  }
}

/** One op as its own `ip` command line (for a single change, e.g. a port attached by a hook). */
export function ipArgv(op: LinkOp): string[] {
  return ['ip', ...renderIpOp(op).split(' ')];
}

/** One log line for a change made by a link operation. */
export function describeLinkOp(op: LinkOp): string {
  switch (op.kind) {
    case 'bridge-add':
      return `bridge ${op.name} created`;
    case 'tap-add':
      return `tap ${op.name} created`;
    case 'link-del':
      return `link ${op.name} removed`;
    case 'addr-add':
      return `address ${op.address}/${op.prefix} added to ${op.dev}`;
    case 'addr-del':
      return `address ${op.address}/${op.prefix} removed from ${op.dev}`;
    case 'route-add':
      return `route ${op.dest}${op.via ? ` via ${op.via}` : ''} added on ${op.dev ?? '?'}`;
    case 'route-del':
      return `route ${op.dest}${op.via ? ` via ${op.via}` : ''} removed from ${op.dev ?? '?'}`;
    case 'bridge-set':
      return `bridge ${op.name} STP ${op.stp ? 'on' : 'off'}, forward delay ${op.forwardDelay} cs`;
    case 'link-set': {
      const parts: string[] = [];
      if (op.mtu !== undefined) parts.push(`mtu ${op.mtu}`);
      if (op.address) parts.push(`address ${op.address}`);
      if (op.master === null) parts.push('nomaster');
      else if (op.master) parts.push(`master ${op.master}`);
      if (op.up) parts.push('up');
      if (op.down) parts.push('down');
      return `link ${op.name} set ${parts.join(' ')}`;
    }
  }
}

/** The text for one `ip -batch -`. */
export function renderIpBatch(ops: readonly LinkOp[]): string {
  return ops.map((op) => `${renderIpOp(op)}\n`).join('');
}
