/**
 * Safe shapes for every value a firewall renderer writes into an `nft -f -` script, an
 * `iptables-restore` text or an argv, and the identifiers (nft table names, iptables chain names)
 * derived from network and domain names.
 *
 * The parser is the security boundary (see validators.ts); these checks are defense in depth: a
 * renderer calls `assert*` on each value right before writing it and throws an internal error if a
 * value could create, split or extend a line or a statement. The accepted shapes are deliberately
 * narrower than what the kernel accepts:
 *
 * - interface names: 1..15 bytes of `[A-Za-z0-9_.-]`, not starting with `-` or `.`. This excludes
 *   `+` (an iptables wildcard: `virbr+` matches every virbr*), `*` (an nft wildcard inside a quoted
 *   name), quotes, `\`, `!`, `;`, `#`, `{`, `}` and whitespace.
 * - addresses: canonical IPv4/IPv6 text (as `canonicalIp` prints it); CIDRs are `address/prefix`
 *   with the host bits cleared.
 * - ports: integers 1..65535.
 * - identifiers: `[A-Za-z0-9_-]` only, generated here, never taken verbatim from input.
 */
import { createHash } from 'node:crypto';
import { canonicalIp, cidr, parseIp } from '../../model/ip.js';
import type { IpFamily } from '../../model/network.js';

/** Thrown by renderers when a value does not have a safe shape (a bug upstream, never user error). */
export class FirewallRenderError extends Error {
  override readonly name = 'FirewallRenderError';
}

const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

/** Undefined when `name` is an interface name the renderers accept; otherwise the reason. */
export function unsafeIfname(name: string): string | undefined {
  if (typeof name !== 'string' || !IFNAME_RE.test(name)) {
    return "interface name must be 1..15 characters of letters, digits, '_', '.', '-' (not starting with '-' or '.')";
  }
  return undefined;
}

export function assertIfname(name: string): string {
  const why = unsafeIfname(name);
  if (why) throw new FirewallRenderError(`internal: unsafe interface name ${JSON.stringify(name)}: ${why}`);
  return name;
}

/** An address in canonical text of the given family. */
export function assertIp(addr: string, family?: IpFamily): string {
  const p = typeof addr === 'string' ? parseIp(addr) : undefined;
  if (!p || canonicalIp(addr) !== addr || (family && p.family !== family)) {
    throw new FirewallRenderError(`internal: unsafe address ${JSON.stringify(addr)}`);
  }
  return addr;
}

/** `address/prefix` with host bits cleared, canonical address text. */
export function assertCidr(text: string, family?: IpFamily): string {
  const m = typeof text === 'string' ? /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(text) : null;
  const addr = m?.[1];
  const prefixText = m?.[2];
  const p = addr ? parseIp(addr) : undefined;
  const prefix = Number(prefixText);
  const ok =
    m &&
    addr &&
    p &&
    (!family || p.family === family) &&
    Number.isInteger(prefix) &&
    prefix >= 0 &&
    prefix <= (p.family === 'ipv4' ? 32 : 128) &&
    cidr(addr, prefix) === text;
  if (!ok) throw new FirewallRenderError(`internal: unsafe subnet ${JSON.stringify(text)}`);
  return text;
}

export function assertPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new FirewallRenderError(`internal: unsafe port ${JSON.stringify(port)}`);
  }
  return port;
}

/** A NAT port range as `start-end`, both ends checked (shared by the nft and iptables renderers). */
export function portRangeText(p: { start: number; end: number }): string {
  return `${assertPort(p.start)}-${assertPort(p.end)}`;
}

/**
 * The `--to-source` / `snat to` text of an SNAT target: `addr[-addr]` plus `:ports` when a port range
 * is given (IPv6 addresses are bracketed then), every part checked.
 */
export function snatToText(
  family: IpFamily,
  target: { addressStart: string; addressEnd?: string; ports?: { start: number; end: number } },
): string {
  const a = (addr: string) => {
    assertIp(addr, family);
    return family === 'ipv6' && target.ports ? `[${addr}]` : addr;
  };
  const range = target.addressEnd
    ? `${a(target.addressStart)}-${a(target.addressEnd)}`
    : a(target.addressStart);
  return `${range}${target.ports ? `:${portRangeText(target.ports)}` : ''}`;
}

const IDENT_RE = /^[A-Za-z0-9_-]+$/;

export function assertIdent(id: string, maxLen = 256): string {
  if (typeof id !== 'string' || !IDENT_RE.test(id) || id.length > maxLen) {
    throw new FirewallRenderError(`internal: unsafe identifier ${JSON.stringify(id)}`);
  }
  return id;
}

function hash8(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 8);
}

/**
 * A stable identifier for a name: up to `keep` characters of the name with everything outside
 * `[A-Za-z0-9_]` turned into `_`, then `_` and 8 hex digits of the SHA-256 of the full name (so two
 * names that sanitize alike still differ). Example: `default` → `default_37a8eec1`.
 */
export function nameId(name: string, keep = 12): string {
  const clean = name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, keep);
  return `${clean}_${hash8(name)}`;
}

/** nft table name of a network (used for both the `ip` and the `ip6` table). */
export function nftNetworkTable(network: string): string {
  return assertIdent(`virtnet_${nameId(network, 32)}`);
}

/** nft table name of one domain's port forwards on one network. */
export function nftPortForwardTable(network: string, domain: string): string {
  const clean = domain.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 24);
  return assertIdent(`virtnet_pf_${clean}_${hash8(`${network}\u0000${domain}`)}`);
}

/** The iptables chain-name stem of a network: `VN-<12 chars>_<8 hex>`; a suffix like `-FWX` follows. */
export function iptablesNetworkStem(network: string): string {
  return `VN-${nameId(network, 12)}`;
}

/** The iptables chain-name stem of one domain's port forwards on one network. */
export function iptablesPortForwardStem(network: string, domain: string): string {
  const clean = domain.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 12);
  return `VP-${clean}_${hash8(`${network}\u0000${domain}`)}`;
}

/** iptables limits chain names to 28 characters. */
export const IPTABLES_CHAIN_MAX = 28;

export function assertChain(name: string): string {
  return assertIdent(name, IPTABLES_CHAIN_MAX);
}
