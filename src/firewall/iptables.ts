/**
 * iptables driver: one `iptables-restore --noflush` per family (and one `ip6tables-restore`), each a
 * transaction of its own: the kernel gets the whole table at COMMIT, all or nothing.
 */
import type { CommandRunner } from '../exec/runner.js';
import type { FirewallScripts, IptablesScripts, ScriptPair } from '../plan/firewall/scripts.js';
import type { Firewall, Presence } from './types.js';

function iptOf(netName: string, s: FirewallScripts): IptablesScripts {
  if (s.backend !== 'iptables')
    throw new Error(`network ${netName}: iptables driver given ${s.backend} scripts`);
  return s.iptables;
}

type Family = 'v4' | 'v6';
const TOOL: Record<Family, string> = { v4: 'iptables-restore', v6: 'ip6tables-restore' };

/** True when a restore text has at least one rule or chain line (an empty family is skipped). */
function hasContent(text: string): boolean {
  return text.split('\n').some((l) => /^\s*[-:]/.test(l));
}

/**
 * Split a restore text into single-command texts (each `*table` + one line + COMMIT), for removing
 * what is left when some rules are already gone.
 */
function singleCommands(text: string): string[] {
  const out: string[] = [];
  let table = '';
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (l.startsWith('*')) table = l;
    else if (l.startsWith('-') && table) out.push(`${table}\n${l}\nCOMMIT\n`);
  }
  return out;
}

/** Split one iptables-restore line into words (double quotes group, as iptables-restore does). */
export function splitRestoreLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  let have = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && inQuote && line[i + 1] === '"') {
      cur += '"';
      i++;
    } else if (c === '"') {
      inQuote = !inQuote;
      have = true;
    } else if (!inQuote && /\s/.test(c)) {
      if (have) out.push(cur);
      cur = '';
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) out.push(cur);
  return out;
}

/** The rules an apply text adds: table, chain and the rule spec (for `iptables -C`). */
export function ruleLines(text: string): { table: string; chain: string; spec: string[] }[] {
  const out: { table: string; chain: string; spec: string[] }[] = [];
  let table = 'filter';
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (l.startsWith('*')) table = l.slice(1);
    const words = splitRestoreLine(l);
    const [op, chain, ...rest] = words;
    if ((op === '-A' || op === '--append' || op === '-I' || op === '--insert') && chain) {
      // `-I CHAIN N spec`: the position is not part of the rule.
      const spec = (op === '-I' || op === '--insert') && /^\d+$/.test(rest[0] ?? '') ? rest.slice(1) : rest;
      out.push({ table, chain, spec });
    }
  }
  return out;
}

const BUILTIN_CHAINS = new Set(['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING']);

/** What an `iptables-save` shows: `table chain` of every chain, `table chain words…` of every rule. */
export function savedRules(save: string): { chains: Set<string>; rules: Set<string> } {
  const chains = new Set<string>();
  const rules = new Set<string>();
  let table = '';
  for (const raw of save.split('\n')) {
    const l = raw.trim();
    if (l.startsWith('*')) table = l.slice(1);
    else if (l.startsWith(':')) chains.add(`${table} ${l.slice(1).split(/\s/)[0]}`);
    else if (l.startsWith('-A ')) {
      const [, chain, ...spec] = splitRestoreLine(l);
      rules.add(`${table} ${chain} ${spec.join(' ')}`);
    }
  }
  return { chains, rules };
}

export class IptablesFirewall implements Firewall {
  readonly backend = 'iptables' as const;
  constructor(private readonly runner: CommandRunner) {}

  private restore(
    fam: Family,
    step: string,
    text: string,
    opts: { test?: boolean; allowFail?: boolean } = {},
  ) {
    const argv = [TOOL[fam], '--noflush', '-w'];
    if (opts.test) argv.push('--test');
    return this.runner.run({ step, argv, input: text, allowFail: opts.allowFail ?? false });
  }

  private families(s: IptablesScripts): [Family, ScriptPair][] {
    return (['v4', 'v6'] as const).map((f) => [f, s[f]] as [Family, ScriptPair]);
  }

  async apply(netName: string, scripts: FirewallScripts): Promise<void> {
    const s = iptOf(netName, scripts);
    const done: [Family, ScriptPair][] = [];
    try {
      for (const [fam, pair] of this.families(s)) {
        if (!hasContent(pair.apply)) continue;
        await this.restore(
          fam,
          `firewall: add ip${fam === 'v6' ? '6' : ''}tables rules of network ${netName}`,
          pair.apply,
        );
        done.push([fam, pair]);
      }
    } catch (e) {
      // The second family failed: take the first one out again, so apply is all or nothing.
      for (const [fam, pair] of done.reverse()) await this.removeFamily(netName, fam, pair);
      throw e;
    }
  }

  private async removeFamily(netName: string, fam: Family, pair: ScriptPair): Promise<void> {
    if (!hasContent(pair.remove)) return;
    const step = `firewall: remove ip${fam === 'v6' ? '6' : ''}tables rules of network ${netName}`;
    const r = await this.restore(fam, step, pair.remove, { allowFail: true });
    if (r.exitCode === 0) return;
    for (const one of singleCommands(pair.remove)) await this.restore(fam, step, one, { allowFail: true });
  }

  async remove(netName: string, scripts: FirewallScripts): Promise<void> {
    for (const [fam, pair] of this.families(iptOf(netName, scripts)))
      await this.removeFamily(netName, fam, pair);
  }

  async present(netName: string, scripts: FirewallScripts): Promise<Presence> {
    // `iptables-restore --test` does not look at the kernel's rules. One `*-save` per family shows
    // most of them: the renderer writes rules in iptables-save's canonical form, so a rule that is
    // there shows as the same words, and a rule of a chain the save does not declare is not there.
    // Every other rule is checked with `iptables -C` (the authority: a rule written in another form
    // than the save prints is still found). Used by adoption and by the ruleset watcher's checks.
    let seenPresent = false;
    let seenMissing = false;
    for (const [fam, pair] of this.families(iptOf(netName, scripts))) {
      const tool = fam === 'v4' ? 'iptables' : 'ip6tables';
      const rules = ruleLines(pair.apply);
      if (!rules.length) continue;
      const saved = await this.runner.run({
        step: `firewall: read ${tool} rules of network ${netName}`,
        argv: [`${tool}-save`],
        allowFail: true,
      });
      const have = saved.exitCode === 0 ? savedRules(saved.stdout) : undefined;
      for (const { table, chain, spec } of rules) {
        if (have?.rules.has(`${table} ${chain} ${spec.join(' ')}`)) {
          seenPresent = true;
          continue;
        }
        if (have && !BUILTIN_CHAINS.has(chain) && !have.chains.has(`${table} ${chain}`)) {
          seenMissing = true;
          continue;
        }
        const r = await this.runner.run({
          step: `firewall: check ${tool} rules of network ${netName}`,
          argv: [tool, '-w', '-t', table, '-C', chain, ...spec],
          allowFail: true,
        });
        if (r.exitCode === 0) seenPresent = true;
        else seenMissing = true;
      }
    }
    if (seenPresent && seenMissing) return 'partial';
    return seenPresent ? 'present' : 'absent';
  }

  async repair(netName: string, scripts: FirewallScripts): Promise<Presence> {
    const state = await this.present(netName, scripts);
    if (state === 'present') return state;
    await this.remove(netName, scripts);
    await this.apply(netName, scripts);
    return state;
  }
}
