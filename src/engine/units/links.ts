/**
 * The links unit: a network's bridge (created from the plan's ops in one `ip -batch -`, or a host NIC
 * enslaved into it), its live changes (diffPlans' link ops) and its removal. Every method reports the
 * changes it made into `changes`; the sequencer logs them.
 */
import { CommandError } from '../../errors.js';
import type { CommandRunner } from '../../exec/runner.js';
import type { Network } from '../../model/network.js';
import {
  describeLinkOp,
  type LinkOp,
  macTapName,
  type NicState,
  planEnslave,
  planLinksDown,
  planRelease,
  renderIpBatch,
} from '../../plan/links.js';
import type { Logger } from '../../util/log.js';
import type { HostProbe } from '../host.js';
import type { NetworkState } from '../state.js';
import type { Change } from './change.js';

export class LinksUnit {
  constructor(
    private readonly runner: CommandRunner,
    private readonly probe: HostProbe,
    private readonly log?: Logger,
  ) {}

  /** Ops in one `ip -batch -` (nothing to run for none). */
  async batch(step: string, ops: readonly LinkOp[]): Promise<void> {
    if (ops.length === 0) return;
    await this.runner.run({ step, argv: ['ip', '-batch', '-'], input: renderIpBatch(ops) });
  }

  /** up: the plan's bridge with its addresses and routes (and the MAC-pinning tap when planned). */
  async create(net: Network, ops: readonly LinkOp[], macTap: boolean, changes: Change[]): Promise<void> {
    const br = net.bridge.name!;
    await this.batch(`links: create bridge ${br}`, ops);
    changes.push({
      message: `bridge ${br} created`,
      meta: {
        addresses: net.ips.map((ip) => `${ip.address}/${ip.prefix}`),
        ...(net.routes.length ? { routes: net.routes.map((r) => `${r.address}/${r.prefix}`) } : {}),
        ...(macTap ? { tap: macTapName(br) } : {}),
      },
    });
  }

  /** up, forward mode bridge with a NIC to enslave: the bridge made, the NIC's addresses moved to it. */
  async enslave(net: Network, nic: NicState, changes: Change[]): Promise<void> {
    const br = net.bridge.name!;
    await this.batch(`links: enslave ${nic.name} to ${br}`, planEnslave(net, nic));
    changes.push({
      message: `bridge ${br} created with ${nic.name} enslaved; ${nic.name}'s addresses and routes moved to ${br}`,
      meta: {
        addresses: nic.addrs.map((a) => `${a.address}/${a.prefix}`),
        routes: nic.routes.map((r) => r.dest),
      },
    });
  }

  /** The undo of `create`: what of the bridge (and tap) exists is deleted. */
  async deleteBridge(net: Network, macTap: boolean, changes: Change[]): Promise<void> {
    const br = net.bridge.name!;
    const ops: LinkOp[] = [];
    if (macTap && (await this.probe.linkExists(macTapName(br))))
      ops.push({ kind: 'link-del', name: macTapName(br) });
    if (await this.probe.linkExists(br)) ops.push({ kind: 'link-del', name: br });
    await this.batch(`links: delete bridge ${br}`, ops);
    for (const op of ops)
      changes.push({
        message: op.kind === 'link-del' && op.name === br ? `bridge ${br} removed` : describeLinkOp(op),
      });
  }

  /** The undo of `enslave`: the NIC back as it was, whatever half-state was left (each line on its own). */
  async release(net: Network, nic: NicState, changes: Change[]): Promise<void> {
    const r = await this.runner.run({
      step: `links: release ${nic.name}`,
      argv: ['ip', '-force', '-batch', '-'],
      input: renderIpBatch(planRelease(net, nic)),
      allowFail: true,
    });
    if (r.exitCode !== 0)
      this.log?.warning(`links: release ${nic.name}: ${r.stderr.trim()}`, { network: net.name });
    changes.push({
      message: `${nic.name} released from ${net.bridge.name}, bridge removed; addresses and routes moved back to ${nic.name}`,
    });
  }

  /** down of a bridge virtnet created: the plan's teardown; a bridge already gone is no failure. */
  async down(state: NetworkState, changes: Change[]): Promise<void> {
    const step = `links: delete bridge ${state.bridge}`;
    const r = await this.runner.run({
      step,
      argv: ['ip', '-batch', '-'],
      input: renderIpBatch(planLinksDown(state.network, { macTap: state.macTap })),
      allowFail: true,
    });
    if (r.exitCode !== 0 && (await this.probe.linkExists(state.bridge)))
      throw new CommandError(step, ['ip', '-batch', '-'], r.exitCode, r.stderr);
    changes.push({
      message: `bridge ${state.bridge} removed`,
      ...(state.macTap ? { meta: { tap: macTapName(state.bridge) } } : {}),
    });
  }

  /** update: diffPlans' link ops (STP, MTU, addresses, routes) in one batch. */
  async update(bridge: string, ops: readonly LinkOp[], changes: Change[]): Promise<void> {
    await this.batch(`links: update ${bridge}`, ops);
    for (const op of ops) changes.push({ message: describeLinkOp(op) });
  }
}
