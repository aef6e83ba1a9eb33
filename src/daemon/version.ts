/** virtnet's version, read from the package.json that ships with the code (src/ or dist/src/). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function virtnetVersion(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'virtnet' && pkg.version) {
        cached = pkg.version;
        return cached;
      }
    } catch {}
    dir = dirname(dir);
  }
  cached = '0.0.0-unknown';
  return cached;
}
