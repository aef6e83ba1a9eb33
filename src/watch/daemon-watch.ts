/**
 * The config-dir watcher as the daemon runs it. Each debounced change of `<name>.xml` (config-watcher)
 * is first checked on its own — an invalid file (bad XML, a value that does not validate, a `<name>`
 * that is not the file's) is logged and announced as `invalid`, and nothing else happens: the running
 * network and its definition stay as they were. A valid change (or a removal) makes the daemon
 * re-read its config dir, which defines / redefines (reconciling a running network live through
 * Engine.update) / undefines (a running network stays up as a transient network until stopped) and
 * announces it — the same path as Manager.Reload and SIGHUP, so there is one definition of what a
 * change means.
 */
import { readFile } from 'node:fs/promises';
import { ValidationError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { ConfigWatcher } from './config-watcher.js';

export interface DaemonWatchOptions {
  dir: string;
  /** Parse + validate one file's text as the daemon would (throws ValidationError). Returns the name inside. */
  check: (xml: string) => string;
  /** Re-read the config dir (the service's reload). */
  reload: () => Promise<void>;
  /** Announce an invalid file (NetworkEvent … 'invalid'). */
  onInvalid: (name: string, path: string, reason: string) => void;
  log: Pick<Logger, 'info' | 'warning' | 'error'>;
  debounceMs?: number;
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
}

/** Why the file at `path` (network `name`) cannot be applied, or undefined (valid, or removed). */
export async function invalidReason(
  name: string,
  path: string,
  check: (xml: string) => string,
): Promise<string | undefined> {
  let xml: string;
  try {
    xml = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return `cannot read: ${oneLine(e)}`;
  }
  try {
    const inside = check(xml);
    if (inside !== name) return `the file defines network '${inside}': it must be named ${inside}.xml`;
    return undefined;
  } catch (e) {
    if (e instanceof ValidationError) return oneLine(e);
    return `cannot parse: ${oneLine(e)}`;
  }
}

/** Start watching; resolves when the watcher is ready. Close it with `.close()`. */
export async function watchConfigDir(opts: DaemonWatchOptions): Promise<ConfigWatcher> {
  const w = new ConfigWatcher({ dir: opts.dir, debounceMs: opts.debounceMs ?? 60 });
  let chain: Promise<unknown> = Promise.resolve();
  w.on('change', ({ name, path }) => {
    chain = chain.then(async () => {
      const why = await invalidReason(name, path, opts.check);
      if (why) {
        opts.log.warning(`config: ${path}: invalid, not applied (the running network is untouched): ${why}`);
        opts.onInvalid(name, path, why);
        return;
      }
      await opts
        .reload()
        .catch((e) => opts.log.error(`config: reload after a change of ${path}: ${oneLine(e)}`));
    });
  });
  w.on('error', (e) => opts.log.error(`config watcher: ${e.message}`));
  await w.start();
  return w;
}
