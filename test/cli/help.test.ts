/**
 * Help is complete, derived from the command registry: `virtnetctl --help` lists every command, and
 * each command's `--help` (and `virtnetctl help NAME`) shows its synopsis, a description and every
 * option with its value name, short form, choices and a one-line description. A new command or option
 * without help fails here. Also virtnetd's --help names every option its parser accepts, and
 * --version works for both programs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/commands/index.js';
import { main } from '../../src/cli/main.js';
import { HELP, parseDaemonArgs } from '../../src/daemon/args.js';
import { virtnetVersion } from '../../src/util/package.js';
import { projectRoot } from '../helpers/shared.js';
import { captureIo } from './io.js';

async function run(argv: string[]) {
  const io = captureIo();
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

describe('virtnetctl help', () => {
  it('--help lists every command of the registry with its summary; --version prints the version', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const c of commands) {
      expect(c.summary.trim(), c.name).not.toBe('');
      expect(r.out).toMatch(
        new RegExp(`^  ${c.name} +${c.summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'),
      );
    }
    const v = await run(['--version']);
    expect(v).toEqual({ code: 0, out: `virtnetctl ${virtnetVersion()}\n`, err: '' });
    expect(virtnetVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  for (const c of commands) {
    it(`${c.name} --help documents every option`, async () => {
      const r = await run([c.name, '--help']);
      expect(r.code).toBe(0);
      expect(r.err).toBe('');
      expect(r.out).toContain(`Usage: virtnetctl ${c.name}${c.synopsis ? ` ${c.synopsis}` : ''}`);
      expect(c.description.trim().length, `${c.name}: description`).toBeGreaterThan(20);
      expect(r.out).toContain(c.description.trim().split('\n')[0]!);
      for (const [name, spec] of Object.entries(c.options)) {
        expect(spec.description.trim(), `${c.name} --${name}: description`).not.toBe('');
        const value = spec.type === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : '';
        const short = spec.short ? `-${spec.short}, ` : '';
        // One line: the option (with its short form and value name), then its description.
        const head = `  ${short || '    '}--${name}${value}  `;
        const line = r.out.split('\n').find((l) => l.startsWith(head));
        expect(line, `${c.name} --help: no line for --${name}`).toBeDefined();
        expect(line).toContain(spec.description.slice(0, 40));
        for (const choice of spec.choices ?? []) expect(line).toContain(choice);
        if (spec.type === 'string' && spec.default !== undefined) expect(line).toContain(`${spec.default}`);
      }
      expect(r.out).toMatch(/^ {2}-h, --help +show this help$/m);
      for (const e of c.examples ?? []) expect(r.out).toContain(`  virtnetctl ${e}`);
      expect(r.out).toMatch(/Exit status:/);
      // `virtnetctl help NAME` is the same text.
      expect((await run(['help', c.name])).out).toBe(r.out);
    });
  }

  it('every bus command documents --bus; every command that prints data has an example', () => {
    const offline = new Set(['validate', 'plan']);
    for (const c of commands) {
      if (!offline.has(c.name)) expect(Object.keys(c.options), c.name).toContain('bus');
      expect(c.examples?.length ?? 0, `${c.name}: examples`).toBeGreaterThan(0);
    }
  });
});

describe('virtnetd help', () => {
  it('--help names every option the parser accepts, and each is accepted', () => {
    // The flags the parser knows, read from its switch (a new flag without help fails here).
    const src = readFileSync(join(projectRoot, 'src/daemon/args.ts'), 'utf8');
    const flags = [...new Set([...src.matchAll(/case '(--[a-z-]+)':/g)].map((m) => m[1]!))];
    expect(flags.length).toBeGreaterThanOrEqual(7);
    for (const f of flags) {
      expect(HELP, f).toMatch(new RegExp(`^ {2}${f} `, 'm'));
      expect(parseDaemonArgs([f]).kind, f).toBe('usage-error'); // needs a value: it is a known option
    }
    for (const f of ['-h', '--help']) expect(parseDaemonArgs([f]).kind).toBe('help');
    for (const f of ['-V', '--version']) expect(parseDaemonArgs([f]).kind).toBe('version');
    expect(HELP).toMatch(/-h, --help/);
    expect(HELP).toMatch(/-V, --version/);
    expect(parseDaemonArgs(['--nope'])).toEqual({ kind: 'usage-error', message: "unknown option '--nope'" });
  });
});
