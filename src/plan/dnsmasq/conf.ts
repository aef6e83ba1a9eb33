/**
 * The dnsmasq config file of a network, byte for byte what libvirt (≥ 8.x, verified against 9.9's
 * networkxml2confdata) writes for the same XML in src/network/bridge_driver.c
 * (networkDnsmasqConfContents), except:
 * - the paths of the hostsfile and addn-hosts file, which are parameters (`DnsmasqPaths`);
 * - the header comment: virtnet's own by default, `libvirtHeader(name)` for conformance;
 * - `pid-file=`: libvirt writes it into the conf; virtnet passes it on dnsmasq's command line
 *   (see argv.ts), so by default there is none here, exactly like libvirt's own unit tests. Give
 *   `paths.pidFile` to get libvirt's production line at libvirt's position.
 *
 * Order of the lines (libvirt's): strict-order; port=0 when `<dns enable='no'>`; server= forwarders
 * (+ no-resolv when one forwards everything); local=/domain/ + domain= + expand-hosts; local=/PTR/ for
 * `localPtr='yes'` addresses; domain-needed + local=// for `forwardPlainNames='no'`; pid-file;
 * except-interface=lo; bind-dynamic; interface=BRIDGE; for isolated networks dhcp-option=3, no-resolv,
 * ra-param=*,0,0; txt-record=; srv-host=; enable-tftp + tftp-root= (every IPv4 address with `<tftp>`);
 * the DHCP of the IPv4 then of the IPv6 address (dhcp-range, or `ADDR,static` when only hosts;
 * dhcp-no-override + dhcp-authoritative + dhcp-boot for IPv4); dhcp-lease-max; dhcp-hostsfile=;
 * addn-hosts=; dhcp-option=option:mtu; enable-ra, or `ADDR,ra-only` for each IPv6 address without DHCP;
 * the `dnsmasq:options` values, one per line.
 *
 * dnsmasq capabilities: libvirt ≥ 8.x no longer varies the config with the dnsmasq version; it only
 * refuses dnsmasq older than 2.67. `opts.dnsmasqVersion` (default '2.90', Debian 12) is checked the same
 * way. Everything written comes from a validated `Network`; the planner re-checks what it computes
 * (ranges, PTR prefixes) and the paths, and raises ValidationError where libvirt would refuse to start.
 */

import { ValidationError } from '../../errors.js';
import { parseIp, prefixMask, prefixToNetmask } from '../../model/ip.js';
import type { DnsSrv, IpDef, Network } from '../../model/network.js';
import { hasControlChars } from '../../model/validators.js';
import { dhcpDefs, hasDhcp, leaseText, ntop } from './common.js';

/** Where the config points dnsmasq to. */
export interface DnsmasqPaths {
  /** `dhcp-hostsfile=` (written only when the network serves DHCP). */
  hostsfile: string;
  /** `addn-hosts=` (written unless DNS is disabled). */
  addnhosts: string;
  /** libvirt's `pid-file=` line; omitted by default (virtnet passes --pid-file on the command line). */
  pidFile?: string;
}

export interface DnsmasqConfOptions {
  /** The comment lines at the top, each starting with '#', ending with a newline. Default: virtnetHeader. */
  header?: string;
  /** dnsmasq version as `dnsmasq --version` reports it, e.g. '2.90'. Default '2.90'. */
  dnsmasqVersion?: string;
}

/** The oldest dnsmasq libvirt (≥ 8.x) accepts, and so virtnet. */
export const DNSMASQ_MIN_VERSION = '2.67';
export const DNSMASQ_DEFAULT_VERSION = '2.90';

/** libvirt's header, with the network name as written in `virsh net-edit NAME`. */
export function libvirtHeader(name: string): string {
  return (
    '##WARNING:  THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n' +
    '##OVERWRITTEN AND LOST.  Changes to this configuration should be made using:\n' +
    `##    virsh net-edit ${name}\n` +
    '## or other application using the libvirt API.\n' +
    '##\n' +
    '## dnsmasq conf file created by libvirt\n'
  );
}

/** virtnet's header. */
export function virtnetHeader(name: string): string {
  return (
    `## dnsmasq configuration of virtnet network ${name}\n` +
    '## Written by virtnet on every start: changes made here are lost.\n' +
    "## Change the network's XML definition instead (virtnetctl).\n"
  );
}

/**
 * libvirt's file names for a network's host files: DIR/NAME.hostsfile and DIR/NAME.addnhosts with the
 * name XML-escaped (virBufferEscapeString: `"` → `&quot;` etc., other control characters dropped) —
 * which is why libvirt's `default"with"quotes"` network uses `default&quot;with&quot;quotes&quot;.hostsfile`.
 */
export function libvirtDnsmasqPaths(dir: string, name: string): DnsmasqPaths {
  const base = `${dir}/${xmlEscape(name)}`;
  return { hostsfile: `${base}.hostsfile`, addnhosts: `${base}.addnhosts` };
}

function xmlEscape(s: string): string {
  let out = '';
  for (const c of s) {
    if (c === '<') out += '&lt;';
    else if (c === '>') out += '&gt;';
    else if (c === '&') out += '&amp;';
    else if (c === '"') out += '&quot;';
    else if (c === "'") out += '&apos;';
    else if (/[\u0001-\u0008\u000b\u000c\u000e-\u001f]/.test(c)) continue;
    else out += c;
  }
  return out;
}

/** Version text ('2.90', 'Dnsmasq version 2.90  Copyright…') → major*1e6 + minor*1e3 + micro. */
function parseVersion(v: string): number | undefined {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  if (!m) return undefined;
  return Number(m[1]) * 1_000_000 + Number(m[2]) * 1000 + Number(m[3] ?? 0);
}

function checkVersion(v: string): void {
  const have = parseVersion(v);
  if (have === undefined) throw ValidationError.one('dnsmasqVersion', v, 'cannot parse a dnsmasq version');
  if (have < parseVersion(DNSMASQ_MIN_VERSION)!) {
    throw ValidationError.one('dnsmasqVersion', v, `dnsmasq version >= ${DNSMASQ_MIN_VERSION} required`);
  }
}

/** A path written as an option value: absolute, one line, nothing dnsmasq would split or unquote. */
function checkPath(field: string, p: string): void {
  if (!p.startsWith('/')) throw ValidationError.one(field, p, 'must be an absolute path');
  if (hasControlChars(p) || /[\s,#"\\]/.test(p)) {
    throw ValidationError.one(field, p, 'must not contain whitespace, control characters or , # " \\');
  }
}

function checkHeader(h: string): void {
  if (h === '') return;
  if (!h.endsWith('\n')) throw ValidationError.one('header', h, 'must end with a newline');
  for (const line of h.slice(0, -1).split('\n')) {
    if (!line.startsWith('#') || hasControlChars(line)) {
      throw ValidationError.one('header', line, "every header line must be a comment starting with '#'");
    }
  }
}

/** Reverse-DNS zone of an address/prefix (virSocketAddrPTRDomain): whole octets / nibbles only. */
function ptrDomain(ip: IpDef, path: string): string {
  const p = parseIp(ip.address);
  if (!p) throw ValidationError.one(`${path}@address`, ip.address, 'not an IP address');
  if (p.family === 'ipv4') {
    if (ip.prefix <= 0 || ip.prefix >= 32 || ip.prefix % 8 !== 0) {
      throw ValidationError.one(
        `${path}@localPtr`,
        String(ip.prefix),
        'PTR domain for IPv4 network with this prefix cannot be automatically created (prefix must be 8, 16 or 24)',
      );
    }
    const octets = [24n, 16n, 8n, 0n].map((s) => String((p.value >> s) & 0xffn));
    return `${octets
      .slice(0, ip.prefix / 8)
      .reverse()
      .join('.')}.in-addr.arpa`;
  }
  if (ip.prefix <= 0 || ip.prefix >= 128 || ip.prefix % 4 !== 0) {
    throw ValidationError.one(
      `${path}@localPtr`,
      String(ip.prefix),
      'PTR domain for IPv6 network with this prefix cannot be automatically created (prefix must be a multiple of 4)',
    );
  }
  const nibbles: string[] = [];
  for (let i = 0; i < ip.prefix / 4; i++)
    nibbles.push(((p.value >> BigInt(124 - 4 * i)) & 0xfn).toString(16));
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}

/**
 * Number of addresses of a DHCP range as libvirt counts them for dhcp-lease-max
 * (virSocketAddrGetRange): the range must lie in the subnet, must not start at the network address
 * or end at the broadcast address (IPv4), and may differ only in the last two octets (IPv4) or the last
 * group (IPv6); the count is built from those.
 */
function rangeCount(ip: IpDef, start: string, end: string, path: string): number {
  const s = parseIp(start);
  const e = parseIp(end);
  const n = parseIp(ip.address);
  if (!s || !e || !n || s.family !== n.family || e.family !== n.family) {
    throw ValidationError.one(path, `${start} - ${end}`, `range addresses must be ${ip.family} addresses`);
  }
  const mask = prefixMask(n.family, ip.prefix);
  const net = n.value & mask;
  if ((s.value & mask) !== net || (e.value & mask) !== net) {
    throw ValidationError.one(
      path,
      `${start} - ${end}`,
      `range is not entirely within network ${ip.address}/${ip.prefix}`,
    );
  }
  if (n.family === 'ipv4') {
    const broadcast = net | (~mask & 0xffffffffn);
    if (s.value === net) throw ValidationError.one(path, start, 'start of range is the network address');
    if (e.value === broadcast) throw ValidationError.one(path, end, 'end of range is the broadcast address');
    if (s.value >> 16n !== e.value >> 16n) {
      throw ValidationError.one(path, `${start} - ${end}`, 'range is too large (> 65535)');
    }
  } else if (s.value >> 16n !== e.value >> 16n) {
    throw ValidationError.one(path, `${start} - ${end}`, 'range is too large (> 65535)');
  }
  const count = Number((e.value & 0xffffn) - (s.value & 0xffffn)) + 1;
  if (count <= 0) throw ValidationError.one(path, `${start} - ${end}`, 'range start is larger than its end');
  return count;
}

function srvLine(srv: DnsSrv, path: string): string {
  if (srv.service === undefined)
    throw ValidationError.one(`${path}@service`, undefined, 'SRV record needs a service');
  let line = `srv-host=_${srv.service}._${srv.protocol}`;
  if (srv.domain !== undefined) line += `.${srv.domain}`;
  // An empty or '.' target means "no such service here": port, priority and weight do not matter.
  if (srv.target !== undefined && srv.target !== '' && srv.target !== '.') {
    line += `,${srv.target}`;
    const port = srv.port ?? 0;
    const priority = srv.priority ?? 0;
    const weight = srv.weight ?? 0;
    // Positional fields: a later one given forces the earlier ones (port defaults to 1).
    if (port || priority || weight) line += `,${port || 1}`;
    if (priority || weight) line += `,${priority}`;
    if (weight) line += `,${weight}`;
  }
  return line;
}

/** The DHCP lines of one address (networkDnsmasqConfDHCP); returns the lease count of its ranges. */
function dhcpLines(ip: IpDef, index: number, out: string[]): number {
  const path = `network/ip[${index}]`;
  const dhcp = ip.dhcp!;
  if (ip.family === 'ipv6' && ip.prefix < 64) {
    // libvirt writes the line anyway and dnsmasq then refuses to start ("prefix length must be at
    // least 64"): say so now, with the element to change.
    throw ValidationError.one(
      `${path}@prefix`,
      String(ip.prefix),
      'DHCPv6 needs a prefix of 64 or longer (dnsmasq)',
    );
  }
  let leases = 0;
  dhcp.ranges.forEach((r, i) => {
    const rpath = `${path}/dhcp/range[${i}]`;
    const start = ntop(r.start, `${rpath}@start`);
    const end = ntop(r.end, `${rpath}@end`);
    const size = ip.family === 'ipv6' ? String(ip.prefix) : prefixToNetmask(ip.prefix);
    let line = `dhcp-range=${start},${end},${size}`;
    if (r.lease) line += `,${leaseText(r.lease)}`;
    out.push(line);
    leases += rangeCount(ip, r.start, r.end, rpath);
  });
  if (dhcp.ranges.length === 0 && dhcp.hosts.length > 0) {
    // Hosts only: a static range switches the DHCP service on for the reservations.
    const addr = ntop(ip.address, `${path}@address`);
    out.push(ip.family === 'ipv6' ? `dhcp-range=${addr},static,${ip.prefix}` : `dhcp-range=${addr},static`);
  }
  if (ip.family === 'ipv4') {
    out.push('dhcp-no-override', 'dhcp-authoritative');
    if (dhcp.bootp) {
      const server = dhcp.bootp.server;
      out.push(
        server !== undefined
          ? `dhcp-boot=${dhcp.bootp.file},,${ntop(server, `${path}/dhcp/bootp@server`)}`
          : `dhcp-boot=${dhcp.bootp.file}`,
      );
    }
  }
  return leases;
}

/** The dnsmasq config text for `net` (see the file comment for what differs from libvirt). */
export function renderDnsmasqConf(net: Network, paths: DnsmasqPaths, opts: DnsmasqConfOptions = {}): string {
  checkVersion(opts.dnsmasqVersion ?? DNSMASQ_DEFAULT_VERSION);
  checkPath('paths.hostsfile', paths.hostsfile);
  checkPath('paths.addnhosts', paths.addnhosts);
  if (paths.pidFile !== undefined) checkPath('paths.pidFile', paths.pidFile);
  const header = opts.header ?? virtnetHeader(net.name);
  checkHeader(header);
  const bridge = net.bridge.name;
  if (bridge === undefined || bridge === '') {
    throw ValidationError.one('network/bridge@name', bridge, 'no bridge name (apply the defaults first)');
  }

  const dns = net.dns;
  const wantDNS = dns?.enable !== false;
  const out: string[] = ['strict-order'];

  if (!wantDNS) out.push('port=0');

  if (wantDNS && dns && dns.forwarders.length > 0) {
    let noResolv = false;
    dns.forwarders.forEach((fwd, i) => {
      let line = 'server=';
      if (fwd.domain !== undefined) line += `/${fwd.domain}/`;
      if (fwd.addr !== undefined) {
        line += ntop(fwd.addr, `network/dns/forwarder[${i}]@addr`);
        // `<forwarder port=…>` (newer libvirt, issue #833): dnsmasq's ADDR#PORT form.
        if (fwd.port !== undefined) line += `#${fwd.port}`;
        if (fwd.domain === undefined) noResolv = true;
      } else {
        line += '#'; // "do not forward queries for this domain"
      }
      out.push(line);
    });
    if (noResolv) out.push('no-resolv');
  }

  if (net.domain) {
    if (net.domain.localOnly === true) out.push(`local=/${net.domain.name}/`);
    out.push(`domain=${net.domain.name}`, 'expand-hosts');
  }

  if (wantDNS) {
    net.ips.forEach((ip, i) => {
      if (ip.localPtr === true) out.push(`local=/${ptrDomain(ip, `network/ip[${i}]`)}/`);
    });
  }

  if (wantDNS && dns?.forwardPlainNames === false) out.push('domain-needed', 'local=//');

  if (paths.pidFile !== undefined) out.push(`pid-file=${paths.pidFile}`);

  out.push('except-interface=lo', 'bind-dynamic', `interface=${bridge}`);

  if (net.forward.mode === 'none') {
    // Isolated: no default route for DHCP clients, no upstream DNS, and RA router lifetime 0.
    out.push('dhcp-option=3', 'no-resolv', 'ra-param=*,0,0');
  }

  if (wantDNS && dns) {
    for (const txt of dns.txts) out.push(`txt-record=${txt.name},${txt.value}`);
    dns.srvs.forEach((srv, i) => {
      out.push(srvLine(srv, `network/dns/srv[${i}]`));
    });
  }

  const defs = dhcpDefs(net);
  let tftp = false;
  for (const ip of net.ips) {
    if (ip.family !== 'ipv4' || ip.tftpRoot === undefined) continue;
    if (!tftp) out.push('enable-tftp');
    tftp = true;
    out.push(`tftp-root=${ip.tftpRoot}`);
  }

  let leases = 0;
  if (defs.v4 !== undefined) leases += dhcpLines(net.ips[defs.v4]!, defs.v4, out);
  if (defs.v6 !== undefined) leases += dhcpLines(net.ips[defs.v6]!, defs.v6, out);
  if (leases > 0) out.push(`dhcp-lease-max=${leases}`);

  if (defs.v4 !== undefined || defs.v6 !== undefined) out.push(`dhcp-hostsfile=${paths.hostsfile}`);
  if (wantDNS) out.push(`addn-hosts=${paths.addnhosts}`);

  if (net.mtu !== undefined && net.mtu > 0) out.push(`dhcp-option=option:mtu,${net.mtu}`);

  if (defs.v6 !== undefined) {
    out.push('enable-ra');
  } else {
    net.ips.forEach((ip, i) => {
      if (ip.family === 'ipv6' && !hasDhcp(ip)) {
        out.push(`dhcp-range=${ntop(ip.address, `network/ip[${i}]@address`)},ra-only`);
      }
    });
  }

  for (const option of net.dnsmasqOptions) out.push(option);

  return header + out.map((l) => `${l}\n`).join('');
}

/**
 * Whether libvirt would run dnsmasq for this network at all (networkStartDhcpDaemon): not for
 * `<forward mode='bridge'>` (the host bridge is someone else's), not without any IP address, and not
 * when there is no DHCP and DNS is disabled.
 */
export function needsDnsmasq(net: Network): boolean {
  if (net.forward.mode === 'bridge') return false;
  if (net.ips.length === 0) return false;
  // libvirt: an address with DHCP ranges, hosts or a TFTP root needs dnsmasq even with DNS off.
  if (!net.ips.some((ip) => hasDhcp(ip) || ip.tftpRoot !== undefined) && net.dns?.enable === false)
    return false;
  return true;
}
