/**
 * Where the read-only shared data lives (libvirt's conformance data, captured hook calls) and how a
 * test that needs it skips: visibly when it is absent, and as a failure under CI=true.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Project root (the folder with package.json). */
export const projectRoot = resolve(here, '..', '..');

/** `../shared` from the project root, or VIRTNET_SHARED when set. */
export const sharedDir = process.env.VIRTNET_SHARED ?? resolve(projectRoot, '..', 'shared');

export const conformanceDir = resolve(sharedDir, 'conformance', 'libvirt');
export const libvirtDbusDir = resolve(sharedDir, 'conformance', 'libvirt-dbus');
export const libvirtHooksDir = resolve(sharedDir, 'libvirt-hooks');

export const inCI = process.env.CI === 'true';

/**
 * Returns undefined when `path` exists; otherwise the reason to skip. Under CI=true a missing path
 * throws instead: in CI a skip is a failure.
 */
export function missingShared(path: string): string | undefined {
  if (existsSync(path)) return undefined;
  const reason = `shared data not found at ${path} (set VIRTNET_SHARED or place ../shared beside the project)`;
  if (inCI) throw new Error(`CI=true and ${reason}`);
  console.warn(`SKIP: ${reason}`);
  return reason;
}
