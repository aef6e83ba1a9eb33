/**
 * Object path labels encoded like systemd's `sd_bus_path_encode`: ASCII letters stay, digits stay
 * unless first, every other byte becomes `_xx` (two lowercase hex digits of the UTF-8 byte); the empty
 * label is `_`. Decoding reverses it. Pure functions.
 */

export const MANAGER_PATH = '/org/virtnet/network1';
export const NETWORK_PATH_PREFIX = `${MANAGER_PATH}/network`;

function isAlpha(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

/** Encode one path label (sd_bus_path_encode's escaping). */
export function encodeLabel(label: string): string {
  if (label === '') return '_';
  const bytes = Buffer.from(label, 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (isAlpha(b) || (i > 0 && isDigit(b))) out += String.fromCharCode(b);
    else out += `_${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Decode one label; undefined when it is not a valid encoding. */
export function decodeLabel(encoded: string): string | undefined {
  if (encoded === '_') return '';
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded.charCodeAt(i);
    if (c === 0x5f) {
      const hex = encoded.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (isAlpha(c) || isDigit(c)) {
      bytes.push(c);
    } else {
      return undefined;
    }
  }
  const text = Buffer.from(bytes).toString('utf8');
  // Reject encodings that do not round-trip (invalid UTF-8, non-canonical escapes).
  return encodeLabel(text) === encoded ? text : undefined;
}

/** The object path of the network called `name`. */
export function networkPath(name: string): string {
  return `${NETWORK_PATH_PREFIX}/${encodeLabel(name)}`;
}

/** The network name for an object path under NETWORK_PATH_PREFIX, or undefined. */
export function networkNameFromPath(path: string): string | undefined {
  const prefix = `${NETWORK_PATH_PREFIX}/`;
  if (!path.startsWith(prefix)) return undefined;
  const label = path.slice(prefix.length);
  if (label.includes('/')) return undefined;
  return decodeLabel(label);
}
