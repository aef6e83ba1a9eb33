#!/usr/bin/env node
/**
 * Bundle what runs at start — virtnetd, virtnetctl and the hooks' in-process fallback — into
 * dist/bundle/ with esbuild (ESM, code splitting: the fallback's lazily imported engine stays lazy).
 * Loading a few bundled files instead of ~150 modules (ours and node_modules') cuts start-up by a
 * quarter to a third (measured: see README, "Install from the .deb"). packaging/install.sh installs the bundle
 * in place of the entry points; tests and `npm run demo` keep using dist/src (tsc's output).
 *
 * Layout mirrors src/ (dist/bundle/bin/virtnetd.js, dist/bundle/hooks/main.js, dist/bundle/chunks/),
 * so the installed entry points keep their paths and find package.json the same way.
 */
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/bundle');
await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['src/bin/virtnetd.ts', 'src/bin/virtnetctl.ts', 'src/hooks/main.ts'],
  outbase: 'src',
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  // Debian 12 ships Node 18.19: the installed program runs there (the booted-Debian test proves it).
  target: 'node18.19',
  chunkNames: 'chunks/[name]-[hash]',
  // CommonJS dependencies (dbus-next, winston's parts) call require(): give ESM output one.
  banner: {
    js: "import { createRequire as __virtnetCreateRequire } from 'node:module'; const require = __virtnetCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
