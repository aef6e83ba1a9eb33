/**
 * The compatibility layer on the host (plan: src/plan/firewall/compat.ts): for each iptables variant
 * other than the one virtnet's own rules use, and each family the network has rules in, read the
 * variant's `filter` table (one `*-save -t filter`), and run the one `*-restore --noflush` text that
 * makes the layer exactly as planned, if anything differs.
 *
 * A variant is only looked at when it exists: iptables-nft when its tools are installed (reading
 * creates nothing); legacy only when the kernel already has a legacy `filter` table in this network
 * namespace (`/proc/net/ip_tables_names`, `ip6_tables_names`) — running a legacy tool would create one.
 */
import { readFile } from 'node:fs/promises';
import type { CommandRunner } from '../exec/runner.js';
import {
  type CompatParent,
  compatFamilies,
  type IptVariant,
  NFT_COMPAT_TABLES,
  type NftBaseChain,
  parseNftBaseChains,
  renderCompat,
  renderNftCompat,
} from '../plan/firewall/compat.js';
import type { FirewallRuleSet, FwFamily } from '../plan/firewall/rules.js';
import { FreshReads } from '../util/fresh-reads.js';

function tool(variant: IptVariant, family: FwFamily, what: 'save' | 'restore'): string {
  return `${family === 'ipv4' ? 'iptables' : 'ip6tables'}-${variant}-${what}`;
}

const NAMES_FILE: Record<FwFamily, string> = {
  ipv4: '/proc/net/ip_tables_names',
  ipv6: '/proc/net/ip6_tables_names',
};

/**
 * The variants' saved filter tables within one check of every network (`variant/family` → save):
 * read once, not once per network; dropped when a network's layer changes it.
 */
export type SaveCache = Map<string, string>;

export interface CompatChange {
  /** An iptables variant, or `native`: other programs' own nftables tables (Docker 29). */
  variant: IptVariant | 'native';
  family: FwFamily;
  problems: string[];
  /** The parents the layer is in now in that variant and family. */
  parents: CompatParent[];
}

export class CompatLayer {
  private nftTools: Promise<boolean> | undefined;
  /**
   * The reads of foreign tables, shared by networks starting or stopping side by side (each read is
   * still made after it was asked for): N networks at once make two reads per table, not N.
   */
  private readonly reads = new FreshReads<string>();

  /**
   * `own`: the variant virtnet's own iptables rules are in (iptables backend): no layer there for a
   * network with rules of its own (its jumps sit at the head of the same chains), only for bridge
   * mode (no rules of its own). `procNames`: where the x_tables name lists are read (tests).
   */
  constructor(
    private readonly runner: CommandRunner,
    private readonly own: IptVariant | undefined,
    private readonly procNames: Record<FwFamily, string> = NAMES_FILE,
  ) {}

  /** Which variant `iptables-restore` is: from `iptables --version` ("(nf_tables)" or "(legacy)"). */
  static async variantOf(runner: CommandRunner): Promise<IptVariant | undefined> {
    try {
      const r = await runner.run({
        step: 'firewall: iptables variant',
        argv: ['iptables', '--version'],
        allowFail: true,
      });
      if (r.exitCode !== 0) return undefined;
      return /nf_tables/.test(r.stdout) ? 'nft' : /legacy/.test(r.stdout) ? 'legacy' : undefined;
    } catch {
      return undefined;
    }
  }

  private async exists(variant: IptVariant, family: FwFamily): Promise<boolean> {
    if (variant === 'legacy') {
      const names = await readFile(this.procNames[family], 'utf8').catch(() => '');
      return names.split('\n').includes('filter');
    }
    // Asked once (a probe shared by the networks that ask at the same time).
    this.nftTools ??= this.runner
      .run({
        step: 'firewall: iptables-nft present',
        argv: ['iptables-nft-save', '--version'],
        allowFail: true,
      })
      .then(
        (r) => r.exitCode === 0,
        () => false,
      );
    return this.nftTools;
  }

  private variants(everywhere: boolean): IptVariant[] {
    return (['nft', 'legacy'] as const).filter((v) => everywhere || v !== this.own);
  }

  private async one(
    network: string,
    rs: FirewallRuleSet | undefined,
    variant: IptVariant,
    family: FwFamily,
    cache?: SaveCache,
  ): Promise<CompatChange | undefined> {
    if (!(await this.exists(variant, family))) return undefined;
    const key = `${variant}/${family}`;
    let saved = cache?.get(key);
    if (saved === undefined) {
      saved = await this.reads.read(
        key,
        async () =>
          (
            await this.runner.run({
              step: `firewall: read ${tool(variant, family, 'save')}`,
              argv: [tool(variant, family, 'save'), '-t', 'filter'],
            })
          ).stdout,
      );
      cache?.set(key, saved);
    }
    const plan = renderCompat(network, rs, family, saved);
    if (!plan.text) return { variant, family, problems: [], parents: plan.parents };
    cache?.delete(key); // changed below: the next network reads it again
    await this.runner.run({
      step: `firewall: compatibility rules of network ${network} (${tool(variant, family, 'restore')})`,
      argv: [tool(variant, family, 'restore'), '--noflush', '-w'],
      input: plan.text,
    });
    return { variant, family, problems: plan.problems, parents: plan.parents };
  }

  /**
   * Foreign native nft base chains: only the tables the layer goes into (NFT_COMPAT_TABLES, both
   * families) are read, so the cost does not grow with the number of virtnet's own tables. A table
   * that does not exist (or nft that cannot run) reads as no chains.
   */
  private async nativeChains(cache?: SaveCache): Promise<NftBaseChain[]> {
    let json = cache?.get('native');
    if (json === undefined) {
      json = await this.reads.read('native', () => this.readNative());
      cache?.set('native', json);
    }
    return parseNftBaseChains(json);
  }

  private async readNative(): Promise<string> {
    const items: unknown[] = [];
    for (const table of NFT_COMPAT_TABLES)
      for (const family of ['ip', 'ip6'] as const) {
        const r = await this.runner
          .run({
            step: `firewall: read nft table ${family} ${table}`,
            argv: ['nft', '-j', 'list', 'table', family, table],
            allowFail: true,
          })
          .catch(() => ({ exitCode: -1, stdout: '', stderr: '' }));
        if (r.exitCode !== 0 || !r.stdout.trim()) continue;
        const got = (JSON.parse(r.stdout) as { nftables?: unknown[] }).nftables;
        if (Array.isArray(got)) items.push(...got);
      }
    return JSON.stringify({ nftables: items });
  }

  private async native(
    network: string,
    rs: FirewallRuleSet | undefined,
    family: FwFamily,
    cache?: SaveCache,
  ): Promise<CompatChange | undefined> {
    const chains = await this.nativeChains(cache);
    const plan = renderNftCompat(network, rs, family, chains);
    if (!plan.text)
      return plan.parents.length
        ? { variant: 'native', family, problems: [], parents: plan.parents }
        : undefined;
    cache?.delete('native');
    await this.runner.run({
      step: `firewall: compatibility rules of network ${network} (foreign nftables chains)`,
      argv: ['nft', '-f', '-'],
      input: plan.text,
    });
    return { variant: 'native', family, problems: plan.problems, parents: plan.parents };
  }

  /**
   * Make the layer of `rs` exactly as planned in every variant and family. One entry per variant
   * and family looked at: what was wrong and is now fixed (`problems`, empty when all was in place)
   * and where the layer is now. A failure in one variant does not stop the others; the first
   * error is thrown at the end.
   */
  async ensure(rs: FirewallRuleSet, cache?: SaveCache): Promise<CompatChange[]> {
    return this.each(rs.network, compatFamilies(rs), rs, cache);
  }

  /**
   * The legacy `filter` tables as they are now (counters left out), '' when there are none: the
   * ruleset watcher's cheap poll for legacy changes (legacy iptables sends no notification).
   */
  async legacyFingerprint(): Promise<string> {
    let out = '';
    for (const family of ['ipv4', 'ipv6'] as const) {
      if (!(await this.exists('legacy', family))) continue;
      // (A legacy table can exist without the legacy tools: a tool that cannot run reads as empty.)
      const r = await this.runner
        .run({
          step: 'firewall: read legacy iptables',
          argv: [tool('legacy', family, 'save'), '-t', 'filter'],
          allowFail: true,
        })
        .catch(() => ({ exitCode: -1, stdout: '', stderr: '' }));
      out += r.stdout.replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, '');
    }
    return out;
  }

  /** The `filter` table of every variant and family that exists (for `virtnetctl doctor`). */
  async saves(): Promise<{ variant: IptVariant; family: FwFamily; save: string }[]> {
    const out: { variant: IptVariant; family: FwFamily; save: string }[] = [];
    for (const variant of ['nft', 'legacy'] as const)
      for (const family of ['ipv4', 'ipv6'] as const) {
        if (!(await this.exists(variant, family))) continue;
        const r = await this.runner
          .run({
            step: `firewall: read ${tool(variant, family, 'save')}`,
            argv: [tool(variant, family, 'save'), '-t', 'filter'],
            allowFail: true,
          })
          .catch(() => ({ exitCode: -1, stdout: '', stderr: '' }));
        if (r.exitCode === 0) out.push({ variant, family, save: r.stdout });
      }
    return out;
  }

  /** The variant virtnet's own iptables rules are in (iptables backend). */
  get ownVariant(): IptVariant | undefined {
    return this.own;
  }

  /** Remove every compat chain and jump of `network`, in every variant and family. */
  async remove(network: string): Promise<CompatChange[]> {
    return this.each(network, ['ipv4', 'ipv6'], undefined);
  }

  private async each(
    network: string,
    families: FwFamily[],
    rs: FirewallRuleSet | undefined,
    // The native chains are read once for both families of this call.
    cache: SaveCache = new Map(),
  ): Promise<CompatChange[]> {
    const out: CompatChange[] = [];
    let first: unknown;
    // Removal looks everywhere (a network's mode may have changed since its layer went in).
    for (const variant of this.variants(rs === undefined || rs.mode === 'bridge')) {
      for (const family of families) {
        try {
          const c = await this.one(network, rs, variant, family, cache);
          if (c) out.push(c);
        } catch (e) {
          first ??= e;
        }
      }
    }
    for (const family of families) {
      try {
        const c = await this.native(network, rs, family, cache);
        if (c) out.push(c);
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
    return out;
  }
}
