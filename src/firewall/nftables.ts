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

/** The input lines nft names in its errors (`/dev/stdin:LINE:COL-COL: Error: …`), 1-based. */
export function nftErrorLines(stderr: string): number[] {
  return [...stderr.matchAll(/^\/dev\/stdin:(\d+):/gm)].map((m) => Number(m[1]));
}

export class NftablesFirewall implements Firewall {
  readonly backend = 'nftables' as const;
  private pending: Pending[] = [];
  private scheduled = false;
  private running = false;
  constructor(private readonly runner: CommandRunner) {}

  /**
   * Group commit: one `nft -f -` at a time; the scripts submitted while it runs (networks starting
   * or stopping side by side) go to the kernel together in the next one. Every nft run reads the
   * tables and chains of the whole ruleset into its cache first, which costs in proportion to the
   * number of networks, so N networks must not mean N runs. The networks' tables are disjoint, so
   * the combined transaction means the same as the scripts one by one.
   */
  private submit(step: string, script: string): Promise<{ exitCode: number; stderr: string }> {
    return new Promise((resolve, reject) => {
      this.pending.push({ step, script, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.scheduled || this.running || this.pending.length === 0) return;
    this.scheduled = true;
    // The next turn of the event loop: what is submitted in this one goes along.
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    this.running = true;
    try {
      await this.runBatch(this.pending.splice(0));
    } finally {
      this.running = false;
      this.kick();
    }
  }

  private async one(p: Pending): Promise<void> {
    try {
      p.resolve(
        await this.runner.run({ step: p.step, argv: ['nft', '-f', '-'], input: p.script, allowFail: true }),
      );
    } catch (e) {
      p.reject(e);
    }
  }

  /**
   * The batch as one transaction. When it fails, the scripts nft names in its errors run on their own
   * (so the error belongs to its network) and the others go in together again; when nft names no
   * line (it could not run, say), the batch is split in halves.
   */
  private async runBatch(batch: Pending[]): Promise<void> {
    if (batch.length === 0) return;
    if (batch.length === 1) return this.one(batch[0]!);
    const first: number[] = [];
    let line = 1;
    const texts = batch.map((p) => {
      const text = p.script.endsWith('\n') ? p.script : `${p.script}\n`;
      first.push(line);
      line += text.split('\n').length - 1;
      return text;
    });
    let r: { exitCode: number; stderr: string } | undefined;
    try {
      r = await this.runner.run({
        step: `firewall: nftables rules of ${batch.length} networks`,
        argv: ['nft', '-f', '-'],
        input: texts.join(''),
        allowFail: true,
      });
    } catch {
      r = undefined; // could not run as a batch: see below
    }
    if (r?.exitCode === 0) {
      for (const p of batch) p.resolve(r);
      return;
    }
    const named = new Set(
      nftErrorLines(r?.stderr ?? '').map((l) => first.findLastIndex((start) => start <= l)),
    );
    named.delete(-1);
    if (named.size > 0) {
      await this.runBatch(batch.filter((_, i) => !named.has(i)));
      for (const i of [...named].sort((a, b) => a - b)) await this.one(batch[i]!);
      return;
    }
    const half = Math.ceil(batch.length / 2);
    await this.runBatch(batch.slice(0, half));
    await this.runBatch(batch.slice(half));
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
