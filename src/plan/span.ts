/**
 * The links a spanning network adds on one host, as data (pure): the VXLAN port on the network's
 * bridge and, in mode 'vxlan', the head-end replication list (one all-zero FDB entry per remote host:
 * broadcast, unknown unicast and multicast go to each of them; the kernel learns the rest). In mode
 * 'evpn' the port has learning off and BGP EVPN (FRR) fills the FDB instead.
 *
 * The executor runs `ipOps` in one `ip -batch -` and `fdbOps` in one `bridge -batch -`.
 */
import type { Network } from '../model/network.js';
import { SPAN_DEFAULT_DSTPORT, type SpanRole, spanRole } from '../model/span.js';

export type SpanIpOp =
  | {
      kind: 'vxlan-add';
      name: string;
      vni: number;
      local: string;
      dstport: number;
      /** Kernel MAC learning on the VXLAN device (off with EVPN: the control plane fills the FDB). */
      learning: boolean;
    }
  /** A bridge port needs no IPv6 link-local of its own (set before it is up). */
  | { kind: 'addrgen-none'; name: string }
  | { kind: 'port-up'; name: string; master: string }
  /** EVPN: the bridge learns nothing on the VXLAN port (zebra installs the remote MACs). */
  | { kind: 'brport-nolearning'; name: string }
  | { kind: 'link-del'; name: string };

/** `bridge fdb append 00:00:00:00:00:00 dev PORT dst ADDRESS` (flood to one remote host). */
export interface SpanFdbOp {
  kind: 'fdb-flood';
  dev: string;
  dst: string;
}

export interface SpanPlan {
  role: SpanRole;
  /** The VXLAN port's name. */
  port: string;
  ipOps: SpanIpOp[];
  fdbOps: SpanFdbOp[];
}

/** The VXLAN port of a span: `vx<VNI>` (at most 10 characters, within IFNAMSIZ). */
export function spanPortName(vni: number): string {
  return `vx${vni}`;
}

/** Bring-up of the span's port on this host (after the bridge exists). */
export function planSpanUp(net: Network, role: SpanRole): SpanPlan {
  const s = net.span;
  const br = net.bridge.name;
  if (!s) throw new Error(`network ${net.name} has no <virtnet:span>`);
  if (!br) throw new Error(`network ${net.name}: no bridge name (applyDefaults must run first)`);
  const port = spanPortName(s.vni);
  const learning = s.mode === 'vxlan';
  return {
    role,
    port,
    ipOps: [
      {
        kind: 'vxlan-add',
        name: port,
        vni: s.vni,
        local: role.local,
        dstport: s.dstport ?? SPAN_DEFAULT_DSTPORT,
        learning,
      },
      { kind: 'addrgen-none', name: port },
      { kind: 'port-up', name: port, master: br },
      ...(learning ? [] : [{ kind: 'brport-nolearning' as const, name: port }]),
    ],
    fdbOps: learning ? role.remotes.map((dst) => ({ kind: 'fdb-flood', dev: port, dst })) : [],
  };
}

/** Tear-down: the port goes (its FDB with it); the bridge is removed by the links plan. */
export function planSpanDown(port: string): SpanIpOp[] {
  return [{ kind: 'link-del', name: port }];
}

/** The span plan for the host that owns `localAddrs` (or throws the one-line role error). */
export function planSpanFor(net: Network, localAddrs: readonly string[]): SpanPlan {
  return planSpanUp(net, spanRole(net, localAddrs));
}

export function renderSpanIpOp(op: SpanIpOp): string {
  switch (op.kind) {
    case 'vxlan-add':
      return `link add ${op.name} type vxlan id ${op.vni} local ${op.local} dstport ${op.dstport}${op.learning ? '' : ' nolearning'}`;
    case 'addrgen-none':
      return `link set dev ${op.name} addrgenmode none`;
    case 'port-up':
      return `link set dev ${op.name} master ${op.master} up`;
    case 'brport-nolearning':
      return `link set dev ${op.name} type bridge_slave learning off`;
    case 'link-del':
      return `link del dev ${op.name}`;
  }
}

export function renderSpanIpBatch(ops: readonly SpanIpOp[]): string {
  return ops.map((op) => `${renderSpanIpOp(op)}\n`).join('');
}

export function renderFdbOp(op: SpanFdbOp): string {
  return `fdb append 00:00:00:00:00:00 dev ${op.dev} dst ${op.dst}`;
}

/** The text for one `bridge -batch -`. */
export function renderFdbBatch(ops: readonly SpanFdbOp[]): string {
  return ops.map((op) => `${renderFdbOp(op)}\n`).join('');
}
