/**
 * libvirt's virNetworkUpdate as a pure function: apply one add/delete/modify of a section to a
 * network and return the new network (the input is not changed). virtnetd's Network.Update
 * (`virtnetctl update`, virsh net-update's words) applies it to the stored definition and then stores
 * and applies the result as a DefineNetwork (live when the network is active).
 *
 * Sections (libvirt's semantics, re-implemented):
 * - ip-dhcp-host: `<host mac|id|name|ip>` in the <ip> at `parentIndex` (-1: the first <ip> with DHCP,
 *   else the first IPv4, else the first IPv6). add: full host, no existing host with the same mac,
 *   name or ip, and no other <ip> of the family with DHCP; modify: replaces the first host matching
 *   mac, ip or name; delete: removes the first host matching every attribute given.
 * - ip-dhcp-range: `<range start end>`; add (no identical range; same family), delete (identical
 *   range); modify is refused (as in libvirt).
 * - dns-host: `<host ip><hostname>…`; add (no host with the same ip), delete (exactly one host
 *   matching the ip or any hostname), modify (exactly one match; replaced).
 * - dns-txt: `<txt name value>`; add (no txt with the name), delete, modify (value replaced).
 * - dns-srv: `<srv …>`; add (no srv matching all given fields), delete (exactly one match); modify is
 *   refused (as in libvirt).
 * - forward-interface: `<interface dev>`; add (not present), delete (present); modify refused.
 * - portgroup, bridge, domain, ip, forward, forward-pf: refused (virtnet has no portgroups; libvirt
 *   itself refuses the others).
 *
 * Errors: ValidationError for a malformed or invalid snippet, an unsupported section/command or a
 * result that fails validation; NotFoundError when nothing matches; ConflictError for duplicates.
 */

import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { canonicalIp } from './ip.js';
import type { DhcpHost, Dns, IpDef, Network } from './network.js';
import {
  Ctx,
  parseDhcpHostElement,
  parseDhcpRangeElement,
  parseDnsHostElement,
  parseDnsSrvElement,
  parseDnsTxtElement,
} from './parse-network.js';
import { validateNetwork } from './validate-network.js';
import { validateHostname, validateIp, validateMac } from './validators.js';
import { childElements, parseXmlDocument, type XmlElement } from './xml.js';

export type UpdateSection =
  | 'bridge'
  | 'domain'
  | 'ip'
  | 'ip-dhcp-host'
  | 'ip-dhcp-range'
  | 'forward'
  | 'forward-interface'
  | 'forward-pf'
  | 'portgroup'
  | 'dns-host'
  | 'dns-txt'
  | 'dns-srv';

export type UpdateCommand = 'add-first' | 'add-last' | 'delete' | 'modify';

const SECTIONS: readonly UpdateSection[] = [
  'bridge',
  'domain',
  'ip',
  'ip-dhcp-host',
  'ip-dhcp-range',
  'forward',
  'forward-interface',
  'forward-pf',
  'portgroup',
  'dns-host',
  'dns-txt',
  'dns-srv',
];
const COMMANDS: readonly UpdateCommand[] = ['add-first', 'add-last', 'delete', 'modify'];

function fail(path: string, value: string | undefined, reason: string): never {
  throw ValidationError.one(path, value, reason);
}

function expectElement(el: XmlElement, name: string, path: string): void {
  if (el.name !== name) fail(path, el.name, `unexpected element <${el.name}>, expecting <${name}>`);
}

function emptyDns(): Dns {
  return { forwarders: [], txts: [], hosts: [], srvs: [] };
}

function hasDhcp(ip: IpDef): boolean {
  return !!ip.dhcp && (ip.dhcp.ranges.length > 0 || ip.dhcp.hosts.length > 0);
}

/** The <ip> a DHCP update applies to (libvirt's virNetworkIPDefByIndex). */
function ipByIndex(net: Network, parentIndex: number): IpDef {
  if (parentIndex >= 0) {
    const ip = net.ips[parentIndex];
    if (!ip) fail('network/ip', String(parentIndex), `no <ip> element at index ${parentIndex}`);
    return ip;
  }
  const ip =
    net.ips.find(hasDhcp) ??
    net.ips.find((i) => i.family === 'ipv4') ??
    net.ips.find((i) => i.family === 'ipv6');
  if (!ip) fail('network/ip', undefined, 'the network has no <ip> element');
  return ip;
}

function checkMultiDhcp(net: Network, ip: IpDef): void {
  for (const other of net.ips) {
    if (other !== ip && other.family === ip.family && hasDhcp(other)) {
      throw new ConflictError(
        `DHCP is supported on only one ${ip.family === 'ipv4' ? 'IPv4' : 'IPv6'} <ip> per network`,
      );
    }
  }
}

const sameMac = (a?: string, b?: string): boolean => !!a && !!b && a.toLowerCase() === b.toLowerCase();
const sameIp = (a?: string, b?: string): boolean =>
  !!a && !!b && (canonicalIp(a) ?? a) === (canonicalIp(b) ?? b);

/** Field checks libvirt's host parser makes even for a partial (lookup) host. */
function checkHostFields(h: DhcpHost, ip: IpDef, path: string): void {
  if (h.mac !== undefined) {
    if (ip.family === 'ipv6')
      fail(`${path}@mac`, h.mac, 'a MAC address is not allowed in an IPv6 static host (use id)');
    const why = validateMac(h.mac, { unicast: true });
    if (why) fail(`${path}@mac`, h.mac, why);
  }
  if (h.id !== undefined && !/^[0-9a-fA-F:]+$/.test(h.id))
    fail(`${path}@id`, h.id, "a client id may contain only hex digits and ':'");
  if (h.name !== undefined && (validateHostname(h.name) || !/^[A-Za-z0-9]/.test(h.name))) {
    fail(`${path}@name`, h.name, validateHostname(h.name) ?? 'host name must start with a letter or digit');
  }
  if (h.ip !== undefined) {
    const why = validateIp(h.ip);
    if (why) fail(`${path}@ip`, h.ip, why);
  }
}

function updateDhcpHost(net: Network, cmd: UpdateCommand, el: XmlElement, parentIndex: number): void {
  const ip = ipByIndex(net, parentIndex);
  const path = `network/ip[${net.ips.indexOf(ip)}]/dhcp/host`;
  expectElement(el, 'host', path);
  const ctx = new Ctx();
  const host = parseDhcpHostElement(ctx, el, path);
  if (ctx.problems.length) throw new ValidationError(ctx.problems);
  checkHostFields(host, ip, path);
  const partial = cmd === 'delete';
  if (partial) {
    if (!host.mac && !host.name && !host.ip)
      fail(path, undefined, 'at least one of name, mac or ip must be given');
  } else {
    if (ip.family === 'ipv6' && !host.id && !host.name)
      fail(path, undefined, 'a static host in an IPv6 network needs id or name');
    if (ip.family === 'ipv4' && !host.mac && !host.name)
      fail(path, undefined, 'a static host in an IPv4 network needs mac or name');
    if (!host.ip) fail(`${path}@ip`, undefined, 'missing IP address in static host');
    const fam = validateIp(host.ip, ip.family);
    if (fam) fail(`${path}@ip`, host.ip, `the host address family must match its <ip> (${fam})`);
  }
  ip.dhcp ??= { ranges: [], hosts: [] };
  const hosts = ip.dhcp.hosts;
  if (cmd === 'modify') {
    const i = hosts.findIndex(
      (h) =>
        sameMac(host.mac, h.mac) ||
        sameIp(host.ip, h.ip) ||
        (host.name !== undefined && host.name === h.name),
    );
    if (i < 0) {
      throw new NotFoundError(
        `no DHCP host with mac '${host.mac ?? 'unknown'}', name '${host.name ?? ''}' or ip '${host.ip ?? 'unknown'}'`,
      );
    }
    hosts[i] = host;
  } else if (cmd === 'delete') {
    const i = hosts.findIndex(
      (h) =>
        (!host.mac || !h.mac || sameMac(host.mac, h.mac)) &&
        (!host.name || host.name === h.name) &&
        (!host.ip || sameIp(host.ip, h.ip)),
    );
    if (i < 0) throw new NotFoundError('no matching DHCP host entry');
    hosts.splice(i, 1);
  } else {
    checkMultiDhcp(net, ip);
    const dup = hosts.find(
      (h) =>
        sameMac(host.mac, h.mac) ||
        (host.name !== undefined && host.name === h.name) ||
        sameIp(host.ip, h.ip),
    );
    if (dup) {
      throw new ConflictError(
        `an existing DHCP host matches <host mac='${host.mac ?? 'unknown'}' name='${host.name ?? ''}' ip='${host.ip ?? 'unknown'}'/>`,
      );
    }
    if (cmd === 'add-first') hosts.unshift(host);
    else hosts.push(host);
  }
}

function updateDhcpRange(net: Network, cmd: UpdateCommand, el: XmlElement, parentIndex: number): void {
  const ip = ipByIndex(net, parentIndex);
  const path = `network/ip[${net.ips.indexOf(ip)}]/dhcp/range`;
  expectElement(el, 'range', path);
  if (cmd === 'modify') fail(path, undefined, 'DHCP ranges cannot be modified, only added or deleted');
  const ctx = new Ctx();
  const range = parseDhcpRangeElement(ctx, el, path);
  if (ctx.problems.length) throw new ValidationError(ctx.problems);
  for (const k of ['start', 'end'] as const) {
    const why = validateIp(range[k]);
    if (why) fail(`${path}@${k}`, range[k], why);
  }
  const fam = validateIp(range.start, ip.family);
  if (fam) fail(`${path}@start`, range.start, `the range address family must match its <ip> (${fam})`);
  ip.dhcp ??= { ranges: [], hosts: [] };
  const ranges = ip.dhcp.ranges;
  const i = ranges.findIndex((r) => sameIp(r.start, range.start) && sameIp(r.end, range.end));
  if (cmd === 'delete') {
    if (i < 0) throw new NotFoundError(`no DHCP range ${range.start}-${range.end}`);
    ranges.splice(i, 1);
    return;
  }
  checkMultiDhcp(net, ip);
  if (i >= 0)
    throw new ConflictError(
      `an existing DHCP range matches <range start='${range.start}' end='${range.end}'/>`,
    );
  if (cmd === 'add-first') ranges.unshift(range);
  else ranges.push(range);
}

function updateForwardInterface(net: Network, cmd: UpdateCommand, el: XmlElement): void {
  const path = 'network/forward/interface';
  expectElement(el, 'interface', path);
  if (cmd === 'modify')
    fail(path, undefined, 'forward interface entries cannot be modified, only added or deleted');
  const dev = el.attrs.dev;
  if (dev === undefined) fail(`${path}@dev`, undefined, 'missing dev attribute in <interface>');
  for (const k of Object.keys(el.attrs))
    if (k !== 'dev') fail(`${path}@${k}`, el.attrs[k], `unknown attribute '${k}'`);
  if (childElements(el).length) fail(path, undefined, '<interface> has no child elements');
  const ifs = net.forward.interfaces;
  const i = ifs.indexOf(dev);
  if (cmd === 'delete') {
    if (i < 0) throw new NotFoundError(`no forward interface '${dev}'`);
    ifs.splice(i, 1);
  } else {
    if (i >= 0) throw new ConflictError(`there is already a forward interface '${dev}'`);
    if (cmd === 'add-first') ifs.unshift(dev);
    else ifs.push(dev);
  }
  if (ifs.length > 0) net.forward.dev = ifs[0];
  else delete net.forward.dev;
}

function updateDnsHost(net: Network, cmd: UpdateCommand, el: XmlElement): void {
  const path = 'network/dns/host';
  expectElement(el, 'host', path);
  const isAdd = cmd === 'add-first' || cmd === 'add-last';
  const ctx = new Ctx();
  const host = parseDnsHostElement(ctx, el, path, !isAdd);
  if (isAdd && host.hostnames.length === 0)
    ctx.add(`${path}/hostname`, undefined, 'a DNS host needs at least one <hostname>');
  if (ctx.problems.length) throw new ValidationError(ctx.problems);
  if (host.ip !== '') {
    const why = validateIp(host.ip);
    if (why) fail(`${path}@ip`, host.ip, why);
  }
  net.dns ??= emptyDns();
  const hosts = net.dns.hosts;
  let found = -1;
  let foundByIp = -1;
  let count = 0;
  hosts.forEach((h, i) => {
    let hit = host.ip !== '' && sameIp(host.ip, h.ip);
    if (hit) foundByIp = i;
    if (cmd === 'delete' && !hit) hit = host.hostnames.some((n) => h.hostnames.includes(n));
    if (hit) {
      count++;
      found = i;
    }
  });
  if (isAdd) {
    if (count > 0) throw new ConflictError('there is already a DNS host record with a matching field');
    if (cmd === 'add-first') hosts.unshift(host);
    else hosts.push(host);
    return;
  }
  if (count === 0) throw new NotFoundError('no matching DNS host record');
  if (count > 1) throw new ConflictError('more than one DNS host record matches');
  if (cmd === 'delete') hosts.splice(found, 1);
  else hosts[foundByIp] = host;
}

function updateDnsTxt(net: Network, cmd: UpdateCommand, el: XmlElement): void {
  const path = 'network/dns/txt';
  expectElement(el, 'txt', path);
  const isAdd = cmd === 'add-first' || cmd === 'add-last';
  const ctx = new Ctx();
  const txt = parseDnsTxtElement(ctx, el, path, !isAdd);
  if (ctx.problems.length) throw new ValidationError(ctx.problems);
  net.dns ??= emptyDns();
  const txts = net.dns.txts;
  const i = txts.findIndex((t) => t.name === txt.name);
  if (isAdd) {
    if (i >= 0) throw new ConflictError(`there is already a DNS TXT record named '${txt.name}'`);
    if (cmd === 'add-first') txts.unshift(txt);
    else txts.push(txt);
  } else if (cmd === 'delete') {
    if (i < 0) throw new NotFoundError(`no DNS TXT record named '${txt.name}'`);
    txts.splice(i, 1);
  } else {
    if (i < 0) throw new NotFoundError(`no DNS TXT record named '${txt.name}'`);
    if (el.attrs.value === undefined)
      fail(`${path}@value`, undefined, 'missing value of the modified DNS TXT record');
    txts[i] = { name: txts[i]!.name, value: txt.value };
  }
}

function updateDnsSrv(net: Network, cmd: UpdateCommand, el: XmlElement): void {
  const path = 'network/dns/srv';
  if (cmd === 'modify') fail(path, undefined, 'DNS SRV records cannot be modified, only added or deleted');
  expectElement(el, 'srv', path);
  const isAdd = cmd === 'add-first' || cmd === 'add-last';
  const ctx = new Ctx();
  const srv = parseDnsSrvElement(ctx, el, path, !isAdd);
  if (ctx.problems.length) throw new ValidationError(ctx.problems);
  if (srv.protocol !== '' && !/^[A-Za-z0-9+-]+$/.test(srv.protocol)) {
    fail(`${path}@protocol`, srv.protocol, 'protocol may contain only letters, digits and - +');
  }
  if (srv.service !== undefined && !/^[A-Za-z0-9_+*-]+$/.test(srv.service)) {
    fail(`${path}@service`, srv.service, 'service may contain only letters, digits and _ - + *');
  }
  net.dns ??= emptyDns();
  const srvs = net.dns.srvs;
  const matches = srvs
    .map((s, i) => ({ s, i }))
    .filter(
      ({ s }) =>
        (srv.domain === undefined || srv.domain === s.domain) &&
        (srv.service === undefined || srv.service === s.service) &&
        (srv.protocol === '' || srv.protocol === s.protocol) &&
        (srv.target === undefined || srv.target === s.target),
    );
  if (isAdd) {
    if (matches.length > 0)
      throw new ConflictError('there is already a DNS SRV record matching all given fields');
    if (cmd === 'add-first') srvs.unshift(srv);
    else srvs.push(srv);
    return;
  }
  if (matches.length === 0) throw new NotFoundError('no matching DNS SRV record');
  if (matches.length > 1) throw new ConflictError('more than one DNS SRV record matches all given fields');
  srvs.splice(matches[0]!.i, 1);
}

/**
 * Apply one virNetworkUpdate-style change. `xml` is the snippet (e.g. `<host mac=… ip=…/>`);
 * `parentIndex` selects the <ip> for ip-dhcp-* sections (-1: automatic, as libvirt).
 */
export function updateNetwork(
  net: Network,
  section: UpdateSection,
  command: UpdateCommand,
  xml: string,
  parentIndex = -1,
): Network {
  if (!SECTIONS.includes(section)) fail('section', String(section), 'unknown network update section');
  if (!COMMANDS.includes(command)) fail('command', String(command), 'unknown network update command');
  const el = parseXmlDocument(xml);
  const out: Network = structuredClone(net);
  switch (section) {
    case 'ip-dhcp-host':
      updateDhcpHost(out, command, el, parentIndex);
      break;
    case 'ip-dhcp-range':
      updateDhcpRange(out, command, el, parentIndex);
      break;
    case 'forward-interface':
      updateForwardInterface(out, command, el);
      break;
    case 'dns-host':
      updateDnsHost(out, command, el);
      break;
    case 'dns-txt':
      updateDnsTxt(out, command, el);
      break;
    case 'dns-srv':
      updateDnsSrv(out, command, el);
      break;
    case 'portgroup':
      fail('section', section, 'portgroups are not supported by virtnet');
      break;
    default:
      fail('section', section, `the '${section}' section of a network cannot be updated`);
  }
  const problems = validateNetwork(out);
  if (problems.length > 0) throw new ValidationError(problems);
  return out;
}
