/**
 * Which files in the config dir are network definitions. Pure.
 *
 * A definition is `<name>.xml` where `<name>` is a valid virtnet network name (the file name must
 * match the `<name>` inside, as libvirt requires for its own config dir). Everything else is ignored,
 * which covers what editors and tools leave beside the files while saving:
 * libvirt's `name.xml.new`, backups `name.xml~` / `name.xml.bak` / `name.xml.orig`, vim's `.name.xml.swp`
 * / `.swx` / `4913`, emacs' `.#name.xml` and `#name.xml#`, dpkg's `name.xml.dpkg-new`, our own atomic
 * writes' `.name.xml.<pid>.<n>.tmp`, and every dotfile.
 */
import { basename } from 'node:path';
import { validateNetworkName } from '../model/validators.js';

/** The network name a config file defines, or undefined when the file is not a definition. */
export function networkNameOfFile(path: string): string | undefined {
  const base = basename(path);
  if (base.startsWith('.') || base.startsWith('#') || !base.endsWith('.xml')) return undefined;
  const name = base.slice(0, -'.xml'.length);
  if (!name || validateNetworkName(name) !== undefined) return undefined;
  return name;
}
