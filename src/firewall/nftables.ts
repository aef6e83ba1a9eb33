/**
 * nftables driver: each script goes to the kernel through one `nft -f -`, which nft applies as one
 * transaction (all or nothing).
 */
import { CommandError } from '../errors.js';
import type { CommandRunner } from '../exec/runner.js';
import type { FirewallScripts, NftScripts } from '../plan/firewall/scripts.js';
import type { Firewall, Presence } from './types.js';

function nftOf(netName: string, s: FirewallScripts): NftScripts {
  if (s.backend !== 'nftables')
    throw new Error(`network ${netName}: nftables driver given ${s.backend} scripts`);
  return s.nft;
}

/** Statements of an nft script, one per line, comments and blanks dropped (for piecewise removal). */
function statements(script: string): string[] {
  return script
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

interface Pending {
  step: string;
  script: string;
  resolve: (r: { exitCode: number; stderr: string }) => void;
  reject: (e: unknown) => void;
}

export class NftablesFirewall implements Firewall {
  readonly backend = 'nftables' as const;
  private pending: Pending[] = [];
  private scheduled = false;
  constructor(private readonly runner: CommandRunner) {}

  /**
   * Scripts submitted in the same turn of the event loop (networks starting or stopping side by
   * side) go to the kernel in ONE `nft -f -`: nft reads the whole ruleset into its cache on every run,
   * so one run for N networks instead of N. The networks' tables are disjoint, so the combined
   * transaction means the same; if it fails, each script is run on its own so the error belongs to
   * its network.
   */
  private submit(step: string, script: string): Promise<{ exitCode: number; stderr: string }> {
    return new Promise((resolve, reject) => {
      this.pending.push({ step, script, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.pending.splice(0);
    const one = async (p: Pending) => {
      try {
        const r = await this.runner.run({
          step: p.step,
          argv: ['nft', '-f', '-'],
          input: p.script,
          allowFail: true,
        });
        p.resolve(r);
      } catch (e) {
        p.reject(e);
      }
    };
    if (batch.length === 1) return one(batch[0]!);
    try {
      const r = await this.runner.run({
        step: `firewall: nftables rules of ${batch.length} networks`,
        argv: ['nft', '-f', '-'],
        input: batch.map((p) => p.script).join('\n'),
        allowFail: true,
      });
      if (r.exitCode === 0) {
        for (const p of batch) p.resolve(r);
        return;
      }
    } catch {
      // fall through to one by one
    }
    for (const p of batch) await one(p);
  }

  private async nft(step: string, script: string, opts: { check?: boolean; allowFail?: boolean } = {}) {
    return this.runner.run({
      step,
      argv: opts.check ? ['nft', '-c', '-f', '-'] : ['nft', '-f', '-'],
      input: script,
      allowFail: opts.allowFail ?? false,
    });
  }

  /**
   * The fresh-network transaction (`create`, no deletions: fast) first; when it fails — a table of
   * the network is already there (a repair, or leftovers), or anything else — the replacing `apply`,
   * whose error is the one reported.
   */
  async apply(netName: string, scripts: FirewallScripts): Promise<void> {
    const step = `firewall: add nftables rules of network ${netName}`;
    const s = nftOf(netName, scripts);
    if (s.create !== undefined && (await this.submit(step, s.create)).exitCode === 0) return;
    const r = await this.submit(step, s.apply);
    if (r.exitCode !== 0) throw new CommandError(step, ['nft', '-f', '-'], r.exitCode, r.stderr);
  }

  async remove(netName: string, scripts: FirewallScripts): Promise<void> {
    const s = nftOf(netName, scripts);
    const r = await this.submit(`firewall: remove nftables rules of network ${netName}`, s.remove);
    if (r.exitCode === 0) return;
    // Some objects are already gone (drift, or a half-done start): remove what is left, one by one.
    await this.removePiecewise(netName, s.remove);
  }

  private async removePiecewise(netName: string, remove: string): Promise<void> {
    for (const stmt of statements(remove)) {
      await this.nft(`firewall: remove nftables rules of network ${netName}`, `${stmt}\n`, {
        allowFail: true,
      });
    }
  }

  async present(netName: string, scripts: FirewallScripts): Promise<Presence> {
    const s = nftOf(netName, scripts);
    // `nft -c` runs the transaction through the kernel without committing it: the removal checks out
    // exactly when every object it deletes exists.
    const all = await this.nft(`firewall: check nftables rules of network ${netName}`, s.remove, {
      check: true,
      allowFail: true,
    });
    if (all.exitCode === 0) return 'present';
    for (const stmt of statements(s.remove)) {
      const one = await this.nft(`firewall: check nftables rules of network ${netName}`, `${stmt}\n`, {
        check: true,
        allowFail: true,
      });
      if (one.exitCode === 0) return 'partial';
    }
    return 'absent';
  }

  async repair(netName: string, scripts: FirewallScripts): Promise<Presence> {
    const s = nftOf(netName, scripts);
    const state = await this.present(netName, scripts);
    if (state === 'present') {
      // One transaction: the old rules go and the planned ones come in atomically.
      await this.nft(`firewall: re-apply nftables rules of network ${netName}`, `${s.remove}\n${s.apply}`);
      return state;
    }
    if (state === 'partial') await this.removePiecewise(netName, s.remove);
    await this.apply(netName, scripts);
    return state;
  }
}
