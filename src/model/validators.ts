/**
 * Reusable field checks for libvirt XML values (network and domain XML).
 *
 * Every check is pure and returns `undefined` when the value is acceptable, or a short reason string
 * (no trailing period, no value quoted: `problem()` / `formatProblem()` add the path and the value).
 * The rules are libvirt's where libvirt has one, tightened where a value ends up in a config file, a
 * firewall rule or a command line (virtnet's validation is the security boundary):
 *
 * - network name: 1..64 characters; no '/' or '\' (libvirt: no '/'); must not start with '.' or '-'
 *   (file names, argv); no whitespace, no control characters (incl. DEL, U+0085, U+2028/2029); no ','
 *   '#' or '=' (the name is part of dnsmasq option values such as `dhcp-hostsfile=…/<name>.hostsfile`).
 *   Quotes, '&', ';' and other punctuation are allowed (libvirt's tests use `default"with"quotes"`):
 *   virtnet never passes a name through a shell.
 * - interface name: 1..15 bytes (IFNAMSIZ-1), not '.' or '..', no '/', ':', '%', whitespace or control
 *   characters, must not start with '-' (it is an argv element of `ip`), and only ASCII letters,
 *   digits and '_' '.' '+' '-' (it is written into nft scripts and iptables-restore input, where
 *   quotes, ';', '{', '#' or '$' could change the rule).
 * - MAC: six ':'-separated pairs of hex digits; `unicast` rejects the multicast bit (libvirt rejects
 *   multicast MACs for the bridge and for DHCP hosts).
 * - UUID: 32 hex digits, as 8-4-4-4-12 or without dashes (libvirt's accepted forms that matter).
 * - hostname / DNS name: RFC 1123 labels (letters, digits, '-', not starting or ending with '-'),
 *   each 1..63 octets, total ≤ 253; one trailing '.' allowed when `allowTrailingDot`.
 * - IP addresses: via ip.ts (`parseIp`), family optionally enforced.
 * - prefixes: 0..32 (IPv4), 0..128 (IPv6). Ports: 1..65535 (0 allowed with `allowZero`).
 * - `dnsmasqSafe`: nothing that can end a dnsmasq config line or start a new option: no control
 *   characters at all; in 'option' context (inside a comma-separated option value) also no ',', '=',
 *   '#', '"' or '\' (dnsmasq interprets quotes and backslash escapes in its config files).
 */

import { type Problem, ValidationError } from '../errors.js';
import { parseIp } from './ip.js';
import type { IpFamily } from './network.js';

/** Build a Problem (the element path, the offending value, the reason). */
export function problem(path: string, value: string | undefined, reason: string): Problem {
  return { path, value, reason };
}

/** Control characters: C0, DEL, C1, and Unicode line/paragraph separators. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const WHITESPACE = /\s/;

export function hasControlChars(value: string): boolean {
  return CONTROL.test(value);
}

/** Name the first control character found, e.g. "newline" or "U+0000". */
function describeControl(value: string): string {
  const m = CONTROL.exec(value);
  if (!m) return '';
  const c = m[0];
  if (c === '\n') return 'a newline';
  if (c === '\r') return 'a carriage return';
  if (c === '\t') return 'a tab';
  if (c === '\u0000') return 'a NUL character';
  return `control character U+${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`;
}

export const MAX_NETWORK_NAME = 64;

export function validateNetworkName(value: string): string | undefined {
  if (value.length === 0) return 'network name must not be empty';
  if (value.length > MAX_NETWORK_NAME) return `network name is longer than ${MAX_NETWORK_NAME} characters`;
  if (hasControlChars(value)) return `network name must not contain ${describeControl(value)}`;
  if (WHITESPACE.test(value)) return 'network name must not contain whitespace';
  if (value.includes('/') || value.includes('\\')) return "network name must not contain '/' or '\\'";
  if (value.startsWith('.')) return "network name must not start with '.'";
  if (value.startsWith('-')) return "network name must not start with '-'";
  const bad = /[,#=]/.exec(value);
  if (bad) return `network name must not contain '${bad[0]}'`;
  return undefined;
}

export const IFNAMSIZ = 16;

export function validateIfname(value: string): string | undefined {
  if (value.length === 0) return 'interface name must not be empty';
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > IFNAMSIZ - 1) return `interface name is longer than ${IFNAMSIZ - 1} bytes`;
  if (hasControlChars(value)) return `interface name must not contain ${describeControl(value)}`;
  if (WHITESPACE.test(value)) return 'interface name must not contain whitespace';
  if (value === '.' || value === '..') return "interface name must not be '.' or '..'";
  // ',', '#', '=', '"' and '\\' too: the name is written into dnsmasq's config (`interface=NAME`),
  // where they would split the option, start a comment or be unquoted.
  const bad = /[/:%,#="\\]/.exec(value);
  if (bad) return `interface name must not contain '${bad[0]}'`;
  if (value.startsWith('-')) return "interface name must not start with '-'";
  // No '+': iptables reads a trailing '+' as a wildcard (`-i virbr+` matches every virbr*).
  if (!/^[A-Za-z0-9_.-]+$/.test(value)) {
    return "interface name may contain only letters, digits and '_' '.' '-' (it is used in nft/iptables rules, where '+' is a wildcard)";
  }
  return undefined;
}

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export function validateMac(value: string, opts: { unicast?: boolean } = {}): string | undefined {
  if (!MAC_RE.test(value)) return 'not a MAC address (expected xx:xx:xx:xx:xx:xx)';
  if (opts.unicast && (Number.parseInt(value.slice(0, 2), 16) & 1) === 1) {
    return 'expected a unicast MAC address, found a multicast one';
  }
  return undefined;
}

/** Lowercase form of a valid MAC (libvirt formats MACs in lowercase). */
export function normalizeMac(value: string): string {
  return value.toLowerCase();
}

/**
 * A unicast MAC address (the only kind a guest NIC, a reservation or a host entry can have), in
 * lower case; else a ValidationError naming `field` and the value.
 */
export function checkMac(value: string, field = 'mac'): string {
  const why = validateMac(value, { unicast: true });
  if (why) throw ValidationError.one(field, value, why);
  return normalizeMac(value);
}

/** A virtnet network name (usable in file names and dnsmasq options); else a ValidationError. */
export function checkNetworkName(value: string, field = 'name'): string {
  const why = validateNetworkName(value);
  if (why) throw ValidationError.one(field, value, why);
  return value;
}

const UUID_RE = /^([0-9a-fA-F]{8})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{12})$/;

export function validateUuid(value: string): string | undefined {
  if (!UUID_RE.test(value)) return 'not a UUID (expected 32 hex digits as 8-4-4-4-12)';
  return undefined;
}

/** Canonical lowercase 8-4-4-4-12 form of a valid UUID. */
export function normalizeUuid(value: string): string {
  const m = UUID_RE.exec(value);
  if (!m) throw new Error(`not a UUID: ${value}`);
  return m.slice(1, 6).join('-').toLowerCase();
}

const LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** RFC 1123 host name: dot-separated labels, total ≤ 253 characters. */
export function validateHostname(
  value: string,
  opts: { allowTrailingDot?: boolean; allowUnderscore?: boolean } = {},
): string | undefined {
  if (value.length === 0) return 'host name must not be empty';
  if (hasControlChars(value)) return `host name must not contain ${describeControl(value)}`;
  let v = value;
  if (opts.allowTrailingDot && v.endsWith('.') && v.length > 1) v = v.slice(0, -1);
  if (v.length > 253) return 'host name is longer than 253 characters';
  for (const label of v.split('.')) {
    if (label.length === 0) return 'host name has an empty label';
    if (label.length > 63) return 'host name has a label longer than 63 characters';
    const l = opts.allowUnderscore ? label.replaceAll('_', 'a') : label;
    if (!LABEL_RE.test(l)) {
      return "host name labels may contain only letters, digits and '-' (not at the start or end)";
    }
  }
  return undefined;
}

export function validateIp(value: string, family?: IpFamily): string | undefined {
  const p = parseIp(value);
  if (!p) {
    if (family === 'ipv4') return 'not an IPv4 address';
    if (family === 'ipv6') return 'not an IPv6 address';
    return 'not an IP address';
  }
  if (family && p.family !== family) {
    return family === 'ipv4' ? 'expected an IPv4 address' : 'expected an IPv6 address';
  }
  return undefined;
}

/** Parse a decimal integer attribute strictly (no sign, no spaces, no hex); undefined when not one. */
export function parseUnsigned(value: string): number | undefined {
  if (!/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

export function validatePrefix(value: string, family: IpFamily): string | undefined {
  const n = parseUnsigned(value);
  const max = family === 'ipv4' ? 32 : 128;
  if (n === undefined || n > max) return `prefix must be an integer 0..${max}`;
  return undefined;
}

export function validatePort(value: string, opts: { allowZero?: boolean } = {}): string | undefined {
  const n = parseUnsigned(value);
  const min = opts.allowZero ? 0 : 1;
  if (n === undefined || n < min || n > 65535) return `port must be an integer ${min}..65535`;
  return undefined;
}

/**
 * Whether `value` can be written into a dnsmasq config file without starting a new line or option.
 * 'line': the value fills the rest of a line (e.g. a dnsmasq:options value); 'option': the value sits
 * inside a comma-separated option (e.g. `host-record=NAME,IP`).
 */
export function dnsmasqSafe(value: string, context: 'line' | 'option' = 'option'): string | undefined {
  if (hasControlChars(value)) return `must not contain ${describeControl(value)} (dnsmasq config injection)`;
  if (context === 'option') {
    const bad = /[,=#"\\]/.exec(value);
    if (bad) return `must not contain '${bad[0]}' (dnsmasq option injection)`;
  }
  return undefined;
}

/** A free-text field that must merely fit on one line (descriptions, paths as data). */
export function singleLine(value: string): string | undefined {
  if (hasControlChars(value)) return `must not contain ${describeControl(value)}`;
  return undefined;
}
