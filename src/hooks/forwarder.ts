/**
 * The hook handler's port forwards on the real firewall: a domain's forwards are planned per network
 * with `planPortForwards` (src/plan/firewall/portforward.ts: its own nft table / iptables chains per
 * domain and network), rendered for the engine's backend and applied through the firewall driver in
 * one transaction per family.
 *
 * - nftables: the apply script replaces the domain's tables atomically, so re-applying (reconnect,
 *   libvirt restarting its network, a daemon restart) never duplicates and never opens a gap.
 * - iptables: chains are removed, then added (iptables-restore cannot replace a jump in place).
 * - The planner's sysctls (route_localnet on the bridge, for connections from the host to
 *   127.0.0.1:port) are written when the forwards are applied and left as they are afterwards (the
 *   bridge of a virtnet network goes away with the network).
 */
import { writeFile } from 'node:fs/promises';
import type { Firewall } from '../firewall/types.js';
import { cidr } from '../model/ip.js';
import type { Network } from '../model/network.js';
import {
  type PortForwardNftScripts,
  type PortForwardRuleSet,
  planPortForwards,
  renderPortForwardsIptables,
  renderPortForwardsNftables,
} from '../plan/firewall/portforward.js';
import type { FirewallScripts } from '../plan/firewall/scripts.js';
import type { Logger } from '../util/log.js';
import type { DomainForwards, ForwardRule, PortForwarder } from './context.js';

export interface FirewallForwarderOptions {
  firewall: Pick<Firewall, 'backend' | 'apply' | 'remove'>;
  /** The defined virtnet networks (their subnets get hairpin masquerade). */
  networks: () => readonly Network[];
  /** Write a sysctl (default: /proc/sys). */
  writeSysctl?: (key: string, value: string) => Promise<void>;
  /** Rule sets applied/removed and sysctls written are logged here at info, tagged `network=NAME`. */
  log?: Pick<Logger, 'info'>;
}

async function procSysctl(key: string, value: string): Promise<void> {
  await writeFile(`/proc/sys/${key.replaceAll('.', '/')}`, value);
}

export class FirewallForwarder implements PortForwarder {
  constructor(private readonly opts: FirewallForwarderOptions) {}

  /** One rule set per network the domain forwards on. */
  plan(f: DomainForwards): PortForwardRuleSet[] {
    const byNet = new Map<string, ForwardRule[]>();
    for (const r of f.rules) byNet.set(r.network, [...(byNet.get(r.network) ?? []), r]);
    const out: PortForwardRuleSet[] = [];
    for (const [network, rules] of byNet) {
      const bridge = rules.find((r) => r.bridge)?.bridge;
      if (!bridge)
        throw new Error(`port forwards of ${f.domain} on ${network}: the network's bridge is unknown`);
      const net = this.opts.networks().find((n) => n.name === network && n.bridge.name === bridge);
      const subnets = net?.ips.map((d) => cidr(d.address, d.prefix)) ?? [];
      out.push(
        planPortForwards({
          network,
          bridge,
          domain: f.domain,
          subnets,
          forwards: rules.map(({ network: _n, bridge: _b, ...target }) => target),
        }),
      );
    }
    return out;
  }

  private scripts(rs: PortForwardRuleSet): FirewallScripts {
    return this.opts.firewall.backend === 'nftables'
      ? { backend: 'nftables', nft: renderPortForwardsNftables(rs) }
      : { backend: 'iptables', iptables: renderPortForwardsIptables(rs) };
  }

  private label(rs: PortForwardRuleSet): string {
    return `${rs.network} (port forwards of domain ${rs.domain})`;
  }

  async apply(f: DomainForwards): Promise<void> {
    const fw = this.opts.firewall;
    for (const rs of this.plan(f)) {
      const scripts = this.scripts(rs);
      const meta = { network: rs.network, domain: rs.domain };
      if (fw.backend === 'iptables') await fw.remove(this.label(rs), scripts);
      for (const [k, v] of Object.entries(rs.sysctls)) {
        await (this.opts.writeSysctl ?? procSysctl)(k, v);
        this.opts.log?.info(`sysctl ${k} set to ${v} (port forwards)`, meta);
      }
      await this.install(rs, scripts);
      this.opts.log?.info(`port forwards of domain ${rs.domain} applied (${fw.backend})`, meta);
    }
  }

  /**
   * nftables: first as a fresh install (`create`: no table deleted, so no wait for the kernel), and
   * when the domain's tables exist already (re-apply), as the replacing script.
   */
  private async install(rs: PortForwardRuleSet, scripts: FirewallScripts): Promise<void> {
    const fw = this.opts.firewall;
    // scripts.nft comes from renderPortForwardsNftables (see scripts()).
    const nft = scripts.backend === 'nftables' ? (scripts.nft as PortForwardNftScripts) : undefined;
    if (nft?.create) {
      try {
        await fw.apply(this.label(rs), {
          backend: 'nftables',
          nft: { apply: nft.create, remove: nft.remove },
        });
        return;
      } catch {
        // a table of the domain exists: replace it
      }
    }
    await fw.apply(this.label(rs), scripts);
  }

  async remove(f: DomainForwards): Promise<void> {
    for (const rs of this.plan(f)) {
      await this.opts.firewall.remove(this.label(rs), this.scripts(rs));
      this.opts.log?.info(`port forwards of domain ${rs.domain} removed (${this.opts.firewall.backend})`, {
        network: rs.network,
        domain: rs.domain,
      });
    }
  }
}
