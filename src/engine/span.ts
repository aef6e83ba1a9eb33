/**
 * The engine's span unit: finds this host's role in a spanning network (from the addresses the host
 * has), and applies / removes / repairs the VXLAN port that plan/span.ts describes. The engine calls
 * it from start, stop and adopt; everything else of the network is the ordinary engine path run on
 * `spanHostNetwork(net, role)` (the full network on the gateway, a bare bridge on a member).
 */
import { CommandError, ConflictError } from '../errors.js';
import type { CommandRunner } from '../exec/runner.js';
import { parseEvpnMacVniJson, parseEvpnVniDetail, parseEvpnVniJson } from '../frr/evpn.js';
import type { Network } from '../model/network.js';
import { type SpanMode, type SpanRoleName, spanRole } from '../model/span.js';
import { planSpanDown, planSpanUp, renderFdbBatch, renderSpanIpBatch, type SpanPlan } from '../plan/span.js';

/** What the engine records about a span on this host (in the network's state file). */
export interface SpanState {
  mode: SpanMode;
  vni: number;
  role: SpanRoleName;
  /** The gateway host's underlay address (where dnsmasq, reservations and NAT live). */
  gateway: string;
  local: string;
  remotes: string[];
  port: string;
}

/**
 * The refusal of a live reservation / DNS name on a span member (it serves no DHCP or DNS: the entry
 * would be silently without effect), or undefined where one is allowed. Shared by the engine and its
 * test doubles.
 */
export function memberHostRefusal(network: string, span: SpanState | undefined): ConflictError | undefined {
  if (span?.role !== 'member') return undefined;
  return new ConflictError(
    `network ${network}: this host is a member of a span; reservations and names are served by the gateway ${span.gateway}: put them into the shared definition (<ip><dhcp><host>) or let the guest send its name in DHCP`,
  );
}

/** The host's unicast addresses, from `ip -j addr show` (read only). */
export async function localAddresses(runner: CommandRunner): Promise<string[]> {
  const r = await runner.run({ step: 'span: read the host addresses', argv: ['ip', '-j', 'addr', 'show'] });
  if (r.stdout.trim() === '') return [];
  const links = JSON.parse(r.stdout) as { addr_info?: { local?: string }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local ?? '').filter((a) => a !== ''));
}

/** The plan for this host: its role from its addresses (one-line error when none of the span's is local). */
export async function spanPlanOnHost(runner: CommandRunner, net: Network): Promise<SpanPlan> {
  return planSpanUp(net, spanRole(net, await localAddresses(runner)));
}

export function spanStateOf(net: Network, plan: SpanPlan): SpanState {
  return {
    mode: net.span!.mode,
    vni: net.span!.vni,
    role: plan.role.role,
    gateway: net.span!.gateway,
    local: plan.role.local,
    remotes: [...plan.role.remotes],
    port: plan.port,
  };
}

/** Create the VXLAN port on the (existing) bridge and its flood list. */
export async function applySpan(runner: CommandRunner, plan: SpanPlan): Promise<void> {
  await runner.run({
    step: `span: create VXLAN port ${plan.port}`,
    argv: ['ip', '-batch', '-'],
    input: renderSpanIpBatch(plan.ipOps),
  });
  if (plan.fdbOps.length > 0)
    await runner.run({
      step: `span: flood list of ${plan.port}`,
      argv: ['bridge', '-batch', '-'],
      input: renderFdbBatch(plan.fdbOps),
    });
}

/** Remove the port when it exists (a port already gone is not an error). */
export async function removeSpan(runner: CommandRunner, port: string, exists: boolean): Promise<void> {
  if (!exists) return;
  await runner.run({
    step: `span: delete VXLAN port ${port}`,
    argv: ['ip', '-batch', '-'],
    input: renderSpanIpBatch(planSpanDown(port)),
  });
}

/** The remote hosts missing from the port's flood list (`bridge fdb show dev PORT`). */
export async function missingFloodEntries(runner: CommandRunner, span: SpanState): Promise<string[]> {
  if (span.mode !== 'vxlan') return [];
  const r = await runner.run({
    step: `span: read the flood list of ${span.port}`,
    argv: ['bridge', 'fdb', 'show', 'dev', span.port],
  });
  const have = new Set(
    r.stdout
      .split('\n')
      .map((l) => /^00:00:00:00:00:00 dst (\S+)/.exec(l.trim())?.[1])
      .filter((x): x is string => x !== undefined),
  );
  return span.remotes.filter((a) => !have.has(a));
}

/**
 * Mode 'evpn': FRR must run with BGP EVPN and advertise-all-vni (zebra then picks up the VXLAN port
 * by itself). A one-line ConflictError otherwise, pointing at the snippet `virtnetctl plan` prints.
 */
export async function checkFrr(runner: CommandRunner, vtysh: readonly string[], net: Network): Promise<void> {
  const argv = [...vtysh, '-c', 'show bgp l2vpn evpn vni json'];
  const why = (m: string) =>
    new ConflictError(
      `network ${net.name}: span mode 'evpn' needs FRR (zebra + bgpd) with BGP EVPN 'advertise-all-vni' on this host: ${m}; 'virtnetctl plan FILE.xml' prints the configuration`,
    );
  let r: Awaited<ReturnType<CommandRunner['run']>>;
  try {
    r = await runner.run({ step: 'span: check FRR', argv, allowFail: true });
  } catch (e) {
    // vtysh not installed (the runner could not start it).
    throw why(`cannot run ${argv[0]} (${e instanceof CommandError ? e.stderr.trim() : String(e)})`);
  }
  if (r.exitCode !== 0) throw why(`vtysh failed: ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
  let st: ReturnType<typeof parseEvpnVniJson>;
  try {
    st = parseEvpnVniJson(r.stdout);
  } catch {
    throw why('bgpd has no l2vpn evpn address family');
  }
  if (!st.advertiseAllVni) throw why('advertise-all-vni is not set');
}

/**
 * One line about a network's span for the bus (`Span` property) and `virtnetctl info`: '' when it
 * does not span hosts; the definition's hosts when it is not running here; this host's role, its
 * address and the VXLAN port when it is.
 */
export function spanSummary(net: Network, active?: SpanState): string {
  const s = net.span;
  if (!s) return '';
  const hosts = `gateway ${s.gateway}, members ${s.peers.join(', ')}`;
  if (!active) return `${s.mode} VNI ${s.vni}: ${hosts}`;
  return `${active.role} (${active.local}) of ${s.mode} VNI ${s.vni} on ${active.port}: ${hosts}`;
}

/** One other host of a running span, as this host sees it. */
export interface SpanPeer {
  address: string;
  role: 'gateway' | 'member';
  /**
   * vxlan: one ICMP echo to the peer's underlay address answered within 1 s (the kernel's FDB and
   * neighbour entries of an idle peer say nothing current); evpn: the peer is one of zebra's remote
   * VTEPs for the VNI (its type 3 route, withdrawn when its BGP session drops). 'unknown' when the
   * probe or vtysh could not run.
   */
  state: 'reachable' | 'unreachable' | 'unknown';
  /** The MACs behind the peer: the VXLAN port's kernel-learned FDB entries (vxlan), zebra's remote MACs (evpn). */
  macs: string[];
}

/** `bridge -j fdb show dev PORT`: the unicast MACs behind each remote address (flood entries left out). */
export function remoteMacsFromFdb(json: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const entries = json.trim() === '' ? [] : (JSON.parse(json) as { mac?: string; dst?: string }[]);
  for (const e of entries) {
    if (!e.mac || !e.dst || e.mac === '00:00:00:00:00:00') continue;
    const list = out.get(e.dst) ?? [];
    if (!list.includes(e.mac)) list.push(e.mac);
    out.set(e.dst, list);
  }
  for (const l of out.values()) l.sort();
  return out;
}

/** The peers of `span` from the FDB's MACs and the reachability of each address. */
export function spanPeersOf(
  span: SpanState,
  macs: Map<string, string[]>,
  state: (address: string) => SpanPeer['state'],
): SpanPeer[] {
  return span.remotes.map((address) => ({
    address,
    role: address === span.gateway ? 'gateway' : 'member',
    state: state(address),
    macs: macs.get(address) ?? [],
  }));
}

/** Read the peers of a running span on this host (bounded: the vxlan probes run side by side, 1 s). */
export async function readSpanPeers(
  runner: CommandRunner,
  vtysh: readonly string[],
  span: SpanState,
): Promise<SpanPeer[]> {
  const fdb = await runner.run({
    step: `span: read the FDB of ${span.port}`,
    argv: ['bridge', '-j', 'fdb', 'show', 'dev', span.port],
  });
  let macs = remoteMacsFromFdb(fdb.stdout);
  const states = new Map<string, SpanPeer['state']>();
  if (span.mode === 'evpn') {
    const r = await runner.run({
      step: 'span: read the remote VTEPs from FRR',
      argv: [...vtysh, '-c', `show evpn vni ${span.vni} json`],
      allowFail: true,
    });
    let vteps: string[] | undefined;
    try {
      if (r.exitCode === 0) vteps = parseEvpnVniDetail(r.stdout)?.remoteVteps ?? [];
    } catch {}
    for (const a of span.remotes)
      states.set(a, vteps ? (vteps.includes(a) ? 'reachable' : 'unreachable') : 'unknown');
    // The routes learned: zebra's remote MACs per VTEP (what it put into the FDB, from its own view).
    const m = await runner.run({
      step: 'span: read the remote MACs from FRR',
      argv: [...vtysh, '-c', `show evpn mac vni ${span.vni} json`],
      allowFail: true,
    });
    try {
      if (m.exitCode === 0) macs = parseEvpnMacVniJson(m.stdout);
    } catch {}
  } else {
    await Promise.all(
      span.remotes.map(async (a) => {
        states.set(a, await probe(runner, span.local, a));
      }),
    );
  }
  return spanPeersOf(span, macs, (a) => states.get(a) ?? 'unknown');
}

/** One echo request from the span's local address; `ping` (iputils) or else BusyBox's. */
async function probe(runner: CommandRunner, local: string, address: string): Promise<SpanPeer['state']> {
  for (const ping of [['ping'], ['busybox', 'ping']]) {
    const r = await runner
      .run({
        step: `span: probe peer ${address}`,
        argv: [...ping, '-c', '1', '-W', '1', '-I', local, address],
        allowFail: true,
        timeoutMs: 5000,
      })
      .catch(() => ({ exitCode: -1 }));
    if (r.exitCode === 0) return 'reachable';
    if (r.exitCode === 1) return 'unreachable';
  }
  return 'unknown';
}

/** One line per peer for `virtnetctl info`: "192.0.2.12 member reachable, 2 MACs: …". */
export function spanPeerLine(p: {
  address: string;
  role: string;
  state: string;
  macs: readonly string[];
}): string {
  const macs =
    p.macs.length === 0
      ? 'no MACs'
      : `${p.macs.length} MAC${p.macs.length > 1 ? 's' : ''}: ${p.macs.join(' ')}`;
  return `${p.address} ${p.role} ${p.state}, ${macs}`;
}
