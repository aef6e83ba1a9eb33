/**
 * Where virtnet's own files are: the folder holding virtnet's package.json, found by walking up from
 * this module (works from src/ under a TypeScript loader and from dist/src/ after a build, and in an
 * installed tree like /usr/lib/virtnet). Also the version written there.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: { root: string; version: string } | null | undefined;

function find(): { root: string; version: string } | null {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'virtnet' && pkg.version) {
        cachedRoot = { root: dir, version: pkg.version };
        return cachedRoot;
      }
    } catch {
      // not here: keep walking up
    }
    dir = dirname(dir);
  }
  cachedRoot = null;
  return cachedRoot;
}

/** The folder with virtnet's package.json (the project root, or the installed lib dir). */
export function packageRoot(): string {
  const f = find();
  if (!f) throw new Error("cannot find virtnet's package.json above " + fileURLToPath(import.meta.url));
  return f.root;
}

/** virtnet's version, or '0.0.0-unknown' when package.json cannot be found. */
export function virtnetVersion(): string {
  return find()?.version ?? '0.0.0-unknown';
}
