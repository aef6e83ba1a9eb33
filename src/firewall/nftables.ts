/**
 * nftables driver: each script goes to the kernel through one `nft -f -`, which nft applies as one
 * transaction (all or nothing).
 */
import type { CommandRunner } from '../exec/runner.js';
import type { Firewall, FirewallScripts, NftScripts, Presence } from './types.js';

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

export class NftablesFirewall implements Firewall {
  readonly backend = 'nftables' as const;
  constructor(private readonly runner: CommandRunner) {}

  private async nft(step: string, script: string, opts: { check?: boolean; allowFail?: boolean } = {}) {
    return this.runner.run({
      step,
      argv: opts.check ? ['nft', '-c', '-f', '-'] : ['nft', '-f', '-'],
      input: script,
      allowFail: opts.allowFail ?? false,
    });
  }

  async apply(netName: string, scripts: FirewallScripts): Promise<void> {
    await this.nft(`firewall: add nftables rules of network ${netName}`, nftOf(netName, scripts).apply);
  }

  async remove(netName: string, scripts: FirewallScripts): Promise<void> {
    const s = nftOf(netName, scripts);
    const r = await this.nft(`firewall: remove nftables rules of network ${netName}`, s.remove, {
      allowFail: true,
    });
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
