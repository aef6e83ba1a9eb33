/** A content hash of a directory tree (names, file contents, symlink targets), to prove nothing changed. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const n of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, n.name);
      h.update(p);
      if (n.isDirectory()) walk(p);
      else if (n.isSymbolicLink()) h.update(`->${readlinkSync(p)}`);
      else h.update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}
