/**
 * The import map has no upward arrow: every folder of src/ sits on a floor, and a module imports only
 * from its own floor or below. Shared contracts (value types, the bus protocol, the config store) sit
 * low so that no adapter needs to reach into the daemon, the engine or the hooks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/shared.js';

/** Lower floors first. A folder may import its own floor and every floor below it. */
const FLOORS: readonly (readonly string[])[] = [
  ['errors.ts', 'util'],
  ['model', 'exec'],
  ['plan', 'bus', 'config'],
  ['dnsmasq', 'firewall', 'frr', 'libvirt', 'watch'],
  ['engine'],
  ['hooks'],
  ['daemon', 'cli'],
  ['bin'],
];

const src = join(projectRoot, 'src');

function floorOf(top: string): number {
  const i = FLOORS.findIndex((f) => f.includes(top));
  if (i < 0) throw new Error(`src/${top} is on no floor: add it to FLOORS in test/layout/floors.test.ts`);
  return i;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Relative module specifiers of a file: static imports/re-exports and dynamic import(). */
function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) out.push(m[1] as string);
  return out;
}

const topOf = (file: string): string => (relative(src, file).split('/')[0] as string).replace(/\.js$/, '.ts');

describe('floors of src/', () => {
  it('reads static, re-exported and dynamic imports', () => {
    expect(
      importsOf(
        "import { a } from './a.js';\nexport * from '../b.js';\nconst c = await import('../c/d.js');\nimport 'x';",
      ),
    ).toEqual(['./a.js', '../b.js', '../c/d.js']);
  });

  it('every folder is on a floor, and no module imports from a higher floor', () => {
    const upward: string[] = [];
    for (const file of tsFiles(src)) {
      const from = topOf(file);
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        const to = topOf(resolve(dirname(file), spec));
        if (floorOf(to) > floorOf(from)) upward.push(`${relative(projectRoot, file)} → ${spec}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('src/ holds no test harness or demo', () => {
    const tops = readdirSync(src);
    expect(tops).not.toContain('sandbox');
    expect(tops).not.toContain('demo');
    for (const t of tops) floorOf(t);
  });
});
