/**
 * Checks of the arguments of bus calls, before anything is touched: each bad value is a
 * ValidationError naming the argument, the value (shortened) and the reason. Pure.
 */

import { ValidationError } from '../errors.js';
import { hookKindOfXml } from '../hooks/args.js';
import { canonicalIp, inSubnet, parseIp } from '../model/ip.js';
import type { Network } from '../model/network.js';
import { normalizeMac, singleLine, validateHostname, validateMac } from '../model/validators.js';

/** Largest network XML DefineNetwork accepts (libvirt networks are a few KiB). */
export const MAX_DEFINE_XML = 256 * 1024;
/** Largest XML HookEvent accepts (a domain's XML with many devices stays far below). */
export const MAX_HOOK_XML = 4 * 1024 * 1024;

export function checkDefineXml(xml: string): void {
  const bytes = Buffer.byteLength(xml, 'utf8');
  if (bytes > MAX_DEFINE_XML) {
    throw ValidationError.one('xml', xml, `network XML is ${bytes} bytes; the limit is ${MAX_DEFINE_XML}`);
  }
  if (xml.trim() === '') throw ValidationError.one('xml', xml, 'network XML is empty');
}

export interface HostArgs {
  mac: string;
  ip?: string;
  hostname?: string;
}

/**
 * AddHost(mac, ip, hostname): a unicast MAC; an optional IP ('' = none) inside one of the network's
 * subnets (and not its own address); an optional host name ('' = none); at least one of ip/hostname.
 */
export function checkHostArgs(net: Network, mac: string, ip: string, hostname: string): HostArgs {
  const problems = [];
  const macWhy = validateMac(mac, { unicast: true });
  if (macWhy) problems.push({ path: 'mac', value: mac, reason: macWhy });
  let ipOut: string | undefined;
  if (ip !== '') {
    const parsed = parseIp(ip);
    if (!parsed) {
      problems.push({ path: 'ip', value: ip, reason: 'not an IP address' });
    } else {
      const canon = canonicalIp(ip) ?? ip;
      const subnets = net.ips.filter((d) => d.family === parsed.family);
      const inside = subnets.find((d) => inSubnet(canon, d.address, d.prefix));
      if (!inside) {
        const list = subnets.map((d) => `${d.address}/${d.prefix}`).join(', ');
        problems.push({
          path: 'ip',
          value: ip,
          reason: list
            ? `outside the network's ${parsed.family === 'ipv4' ? 'IPv4' : 'IPv6'} subnet(s) ${list}`
            : `network '${net.name}' has no ${parsed.family === 'ipv4' ? 'IPv4' : 'IPv6'} subnet`,
        });
      } else if (canonicalIp(inside.address) === canon) {
        problems.push({ path: 'ip', value: ip, reason: "is the network's own (host side) address" });
      } else {
        ipOut = canon;
      }
    }
  }
  if (hostname !== '') {
    const why = validateHostname(hostname);
    if (why) problems.push({ path: 'hostname', value: hostname, reason: why });
  }
  if (ip === '' && hostname === '') {
    problems.push({ path: 'ip', value: ip, reason: 'give an IP address, a host name or both' });
  }
  if (problems.length) throw new ValidationError(problems);
  return { mac: normalizeMac(mac), ...(ipOut ? { ip: ipOut } : {}), ...(hostname ? { hostname } : {}) };
}

const HOOK_WORD = /^[a-z][a-z0-9-]{0,63}$/;

/**
 * HookEvent(object, operation, sub_operation, extra, xml): libvirt's hook arguments, checked. `object`
 * is libvirt's first argument — the domain's or network's name; the XML tells which hook called
 * (`<domain>`: qemu, `<hookData>`: network). See src/hooks/.
 */
export function checkHookArgs(
  object: string,
  operation: string,
  subOperation: string,
  extra: string,
  xml: string,
): void {
  const problems = [];
  const objWhy =
    object.length === 0 ? 'empty' : object.length > 255 ? 'longer than 255 characters' : singleLine(object);
  if (objWhy) problems.push({ path: 'object', value: object, reason: objWhy });
  if (!hookKindOfXml(xml)) {
    problems.push({
      path: 'xml',
      value: xml.slice(0, 40),
      reason: 'expected a <domain> (qemu hook) or <hookData> (network hook) document',
    });
  }
  if (!HOOK_WORD.test(operation)) {
    problems.push({ path: 'operation', value: operation, reason: 'expected a libvirt hook operation word' });
  }
  for (const [path, value] of [
    ['sub_operation', subOperation],
    ['extra', extra],
  ] as const) {
    if (value.length > 256) problems.push({ path, value, reason: 'longer than 256 characters' });
    else {
      const why = singleLine(value);
      if (why) problems.push({ path, value, reason: why });
    }
  }
  const bytes = Buffer.byteLength(xml, 'utf8');
  if (bytes > MAX_HOOK_XML)
    problems.push({ path: 'xml', value: xml, reason: `${bytes} bytes; the limit is ${MAX_HOOK_XML}` });
  if (problems.length) throw new ValidationError(problems);
}
