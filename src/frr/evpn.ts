/**
 * FRR as the control plane of `<virtnet:span mode='evpn'>` (pure: rendering and parsing only).
 *
 * What virtnet needs from FRR is host-level, not per network: zebra, and bgpd with an iBGP session to
 * every other host of the span and `advertise-all-vni` in the l2vpn evpn address family. With that,
 * zebra finds each VXLAN port virtnet puts on a bridge by itself (an L2 VNI), bgpd announces the
 * local MACs and the host as a flooding target (EVPN type 2 and type 3 routes), and zebra fills the
 * VXLAN FDB with the other hosts' — no per-network FRR configuration exists to write or remove, so
 * virtnet never edits FRR's configuration. `renderEvpnBgpSnippet` prints the host-level part for the
 * admin (`virtnetctl plan`); the engine checks through vtysh, before it changes anything, that FRR
 * runs with advertise-all-vni.
 */
import { formatIp, parseIp } from '../model/ip.js';
import type { Span, SpanRole } from '../model/span.js';

/** The private AS the snippet uses unless told otherwise (iBGP: the same on every host). */
export const DEFAULT_EVPN_ASN = 65000;

/** BGP's router id is 32 bits: the address itself (IPv4) or its last 32 bits (IPv6 underlay). */
export function routerId(local: string): string {
  const ip = parseIp(local);
  if (!ip) throw new Error(`not an address: ${local}`);
  return ip.family === 'ipv4' ? local : formatIp('ipv4', ip.value & 0xffffffffn);
}

/** The FRR configuration this host needs for the span (frr.conf syntax, for vtysh or the file). */
export function renderEvpnBgpSnippet(span: Span, role: SpanRole, asn = DEFAULT_EVPN_ASN): string {
  const lines = [
    `! virtnet span VNI ${span.vni}: BGP EVPN control plane of this host (${role.local})`,
    `router bgp ${asn}`,
    ` bgp router-id ${routerId(role.local)}`,
    ' no bgp default ipv4-unicast',
  ];
  for (const r of role.remotes) lines.push(` neighbor ${r} remote-as ${asn}`);
  lines.push(' !', ' address-family l2vpn evpn');
  for (const r of role.remotes) lines.push(`  neighbor ${r} activate`);
  lines.push('  advertise-all-vni', ' exit-address-family', 'exit', '');
  return lines.join('\n');
}

export interface EvpnStatus {
  advertiseAllVni: boolean;
  /** The VNIs bgpd knows (zebra found their VXLAN devices). */
  vnis: number[];
}

/** `vtysh -c 'show bgp l2vpn evpn vni json'`, parsed. Throws on text that is not that JSON. */
export function parseEvpnVniJson(text: string): EvpnStatus {
  const j = JSON.parse(text) as Record<string, unknown>;
  if (typeof j !== 'object' || j === null || !('advertiseAllVnis' in j))
    throw new Error('not the output of show bgp l2vpn evpn vni json');
  return {
    advertiseAllVni: j.advertiseAllVnis === 'Enabled',
    vnis: Object.keys(j)
      .filter((k) => /^[0-9]+$/.test(k))
      .map(Number),
  };
}

export interface EvpnVniInfo {
  /** Other hosts that announced themselves as flooding targets for the VNI (type 3 routes). */
  remoteVteps: string[];
  /** MACs zebra knows in the VNI (local and remote). */
  macs: number;
}

/** `vtysh -c 'show evpn vni VNI json'`, parsed (undefined when zebra does not know the VNI). */
export function parseEvpnVniDetail(text: string): EvpnVniInfo | undefined {
  if (text.trim() === '' || text.trim() === '{}') return undefined;
  const j = JSON.parse(text) as { numMacs?: number; numRemoteVteps?: unknown; remoteVteps?: unknown };
  // FRR 8.4 lists the remote VTEPs under "numRemoteVteps" for one VNI (and under "remoteVteps" in
  // the all-VNI listing); entries are addresses, or objects with `ip` in other releases.
  const list = Array.isArray(j.remoteVteps)
    ? j.remoteVteps
    : Array.isArray(j.numRemoteVteps)
      ? j.numRemoteVteps
      : [];
  const vteps = list.map((v) => (typeof v === 'string' ? v : String((v as { ip?: string }).ip ?? '')));
  return { remoteVteps: vteps.filter((v) => v !== ''), macs: j.numMacs ?? 0 };
}

/**
 * `vtysh -c 'show evpn mac vni VNI json'`, parsed: the remote MACs zebra learned from the other
 * hosts' type 2 routes, per remote VTEP (local MACs left out). FRR 8.4's shape:
 * `{"numMacs":N,"macs":{"52:54:…":{"type":"remote","remoteVtep":"192.0.2.11",…},…}}`.
 */
export function parseEvpnMacVniJson(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (text.trim() === '' || text.trim() === '{}') return out;
  const j = JSON.parse(text) as { macs?: Record<string, { type?: string; remoteVtep?: string }> };
  for (const [mac, m] of Object.entries(j.macs ?? {})) {
    if (m.type !== 'remote' || !m.remoteVtep) continue;
    out.set(m.remoteVtep, [...(out.get(m.remoteVtep) ?? []), mac.toLowerCase()].sort());
  }
  return out;
}
