/**
 * A runnable copy of src/ for child processes that must start fast (the hooks' in-process fallback):
 * every src/**.ts transpiled once (types are tsc's business, not checked here) into a temp dir with
 * node_modules linked, so `node <dir>/src/hooks/main.js` runs as it would from dist/.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { projectRoot } from '../helpers/shared.js';

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

export interface Transpiled {
  dir: string;
  /** `<dir>/src/hooks/main.js` */
  hookMain: string;
  remove(): void;
}

export function transpileSources(prefix = 'vh8-build-'): Transpiled {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const file of walk(join(projectRoot, 'src'))) {
    const out = join(dir, relative(projectRoot, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(out), { recursive: true });
    const r = ts.transpileModule(readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(out, r.outputText);
  }
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  symlinkSync(join(projectRoot, 'node_modules'), join(dir, 'node_modules'));
  return {
    dir,
    hookMain: join(dir, 'src', 'hooks', 'main.js'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
