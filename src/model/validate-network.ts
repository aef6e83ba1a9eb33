/**
 * Value validation of a parsed `Network`: the security boundary. Every value that ends up in a
 * dnsmasq config file, a hosts file, a firewall rule or a command argument is checked here, with
 * libvirt's own rules where it has them and stricter ones where a value could inject a line or an
 * option. Returns every problem found (element path, value, reason); never throws.
 *
 * Rules (beyond the field validators in validators.ts):
 * - forward: interfaces are interface names; nat address range is IPv4 with start ≤ end; nat port
 *   range 1..65535 with start ≤ end.
 * - bridge: name is an interface name; zone is [A-Za-z0-9_.-]{1,64}; delay ≤ 65535.
 * - mtu 68..65535, and ≥ 1280 when the network has IPv6.
 * - domain name is a host name; register='yes' needs localOnly='yes' (libvirt).
 * - dns: enable='no' admits no records (libvirt); forwarders need addr or domain, port only with
 *   addr; host names are RFC 1123; SRV service/protocol use libvirt's character sets (minus '/',
 *   which would split a dnsmasq `server=/…/` style value), port/priority/weight only with a target;
 *   TXT names/values have no ' ' (name) ',' '=' '#' '"' '\' or control characters.
 * - ip: family matches the address; netmask IPv4-only and contiguous; prefix in range; a default
 *   prefix must exist (classful for IPv4); tftp root is an absolute path without '..' components;
 *   DHCP ranges lie inside the subnet, start ≤ end, avoid the network/broadcast address and do not
 *   overlap; leases are ≥ 2 minutes unless 0 (infinite); hosts lie inside the subnet, have mac or
 *   name (IPv4) / id or name (IPv6), no mac in IPv6, unicast MACs, DUIDs of hex digits and ':',
 *   names starting with a letter or digit; no duplicate MAC, id, IP or name among hosts of an <ip>;
 *   bootp file is dnsmasq-safe; at most one IPv4 and one IPv6 <ip> with DHCP (libvirt).
 * - route: address and gateway of the route's family; address is a network address for the prefix;
 *   the gateway is inside the subnet of one of the network's <ip> (libvirt); metric ≥ 1.
 * - forward mode 'bridge' admits no <ip>, <dns> records, <domain>, <mac> or <route> (libvirt).
 * - dnsmasq:options values: non-empty, no control characters (each becomes one config line).
 */

import type { Problem } from '../errors.js';
import {
  broadcastAddress,
  cidr,
  compareIp,
  inSubnet,
  netmaskToPrefix,
  networkAddress,
  parseIp,
  prefixMask,
  rangeSize,
} from './ip.js';
import type { DhcpHost, IpDef, LeaseTime, Network } from './network.js';
import { validateSpan } from './span.js';
import {
  dnsmasqSafe,
  hasControlChars,
  problem,
  validateHostname,
  validateIfname,
  validateIp,
  validateMac,
  validateNetworkName,
} from './validators.js';

const SERVICE_RE = /^[A-Za-z0-9_+*-]+$/;
const PROTOCOL_RE = /^[A-Za-z0-9+-]+$/;
const ZONE_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const DUID_RE = /^[0-9a-fA-F:]+$/;
/** libvirt's DNS_RECORD_LENGTH_SRV: 512 minus the RFC 2782 overhead. */
export const MAX_SRV_SERVICE = 512 - 30;
/**
 * `_service` and `_protocol` are DNS labels in the SRV name dnsmasq builds: ≤ 63 bytes each with the
 * leading '_'. libvirt only checks the 482-character record limit and writes a config dnsmasq then
 * refuses ("bad SRV record"); virtnet says so at definition time.
 */
export const MAX_SRV_LABEL = 62;

function isNetworkAddress(address: string, prefix: number): boolean {
  const p = parseIp(address);
  if (!p) return false;
  const m = prefixMask(p.family, prefix);
  return (p.value & m) === p.value;
}

function checkLease(out: Problem[], lease: LeaseTime | undefined, path: string): void {
  if (!lease || lease.expiry === 0) return;
  if ((lease.unit === 'seconds' && lease.expiry < 120) || (lease.unit === 'minutes' && lease.expiry < 2)) {
    out.push(problem(`${path}/lease@expiry`, String(lease.expiry), 'the minimum lease time is 2 minutes'));
  }
  const seconds = lease.expiry * (lease.unit === 'hours' ? 3600 : lease.unit === 'minutes' ? 60 : 1);
  if (seconds > 0xffffffff) {
    out.push(
      problem(`${path}/lease@expiry`, String(lease.expiry), 'lease time is longer than 2^32-1 seconds'),
    );
  }
}

function checkIp(out: Problem[], ip: IpDef, path: string): boolean {
  const why = validateIp(ip.address);
  if (why) {
    out.push(problem(`${path}@address`, ip.address, why));
    return false;
  }
  const actual = parseIp(ip.address)!.family;
  if (ip.family !== actual) {
    out.push(
      problem(
        `${path}@address`,
        ip.address,
        `family '${ip.family}' given for an ${actual === 'ipv4' ? 'IPv4' : 'IPv6'} address`,
      ),
    );
    return false;
  }
  let ok = true;
  if (ip.netmask !== undefined) {
    if (ip.family === 'ipv6') {
      out.push(
        problem(`${path}@netmask`, ip.netmask, 'netmask is not allowed for an IPv6 address (use prefix)'),
      );
      ok = false;
    } else if (netmaskToPrefix(ip.netmask) === undefined) {
      out.push(problem(`${path}@netmask`, ip.netmask, 'not a contiguous IPv4 netmask'));
      ok = false;
    }
  }
  const max = ip.family === 'ipv4' ? 32 : 128;
  if (ip.prefix > max) {
    out.push(problem(`${path}@prefix`, String(ip.prefix), `prefix must be 1..${max}`));
    ok = false;
  } else if (ip.prefix === 0 && ip.netmask === undefined) {
    out.push(
      problem(
        `${path}@prefix`,
        undefined,
        `no prefix or netmask given and none can be derived from ${ip.address}`,
      ),
    );
    ok = false;
  }
  return ok;
}

function checkDhcp(out: Problem[], ip: IpDef, path: string, subnetOk: boolean): void {
  const dhcp = ip.dhcp;
  if (!dhcp) return;
  const subnet = subnetOk ? cidr(ip.address, ip.prefix) : `${ip.address}/${ip.prefix}`;
  const checkInside = (p: string, v: string, what: string): boolean => {
    const why = validateIp(v, ip.family);
    if (why) {
      out.push(problem(p, v, why));
      return false;
    }
    if (subnetOk && !inSubnet(v, ip.address, ip.prefix)) {
      out.push(problem(p, v, `${what} ${v} is outside the subnet ${subnet}`));
      return false;
    }
    return true;
  };
  const goodRanges: { start: string; end: string; i: number }[] = [];
  dhcp.ranges.forEach((r, i) => {
    const p = `${path}/range[${i}]`;
    const s = checkInside(`${p}@start`, r.start, 'address');
    const e = checkInside(`${p}@end`, r.end, 'address');
    checkLease(out, r.lease, p);
    if (!s || !e) return;
    if (compareIp(r.start, r.end) > 0) {
      out.push(problem(`${p}@end`, r.end, `range end ${r.end} is before its start ${r.start}`));
      return;
    }
    if (subnetOk && ip.family === 'ipv4' && ip.prefix < 31) {
      const first = networkAddress('ipv4', parseIp(ip.address)!.value, ip.prefix);
      const bcast = broadcastAddress(ip.address, ip.prefix);
      const last = parseIp(bcast)!.value;
      const ps = parseIp(r.start)!.value;
      const pe = parseIp(r.end)!.value;
      if (ps === first || pe === first) {
        out.push(problem(`${p}@start`, r.start, `range includes the network address of ${subnet}`));
      }
      if (ps === last || pe === last) {
        out.push(problem(`${p}@end`, r.end, `range includes the broadcast address ${bcast}`));
      }
    }
    for (const o of goodRanges) {
      if (compareIp(r.start, o.end) <= 0 && compareIp(o.start, r.end) <= 0) {
        out.push(
          problem(
            `${p}@start`,
            r.start,
            `range ${r.start}-${r.end} overlaps range[${o.i}] ${o.start}-${o.end}`,
          ),
        );
      }
    }
    if (rangeSize(r.start, r.end) > 0n) goodRanges.push({ start: r.start, end: r.end, i });
  });

  const seen = {
    mac: new Map<string, number>(),
    id: new Map<string, number>(),
    ip: new Map<string, number>(),
    name: new Map<string, number>(),
  };
  dhcp.hosts.forEach((h: DhcpHost, i) => {
    const p = `${path}/host[${i}]`;
    if (h.mac !== undefined) {
      if (ip.family === 'ipv6') {
        out.push(problem(`${p}@mac`, h.mac, 'a MAC address is not allowed in an IPv6 static host (use id)'));
      } else {
        const why = validateMac(h.mac, { unicast: true });
        if (why) out.push(problem(`${p}@mac`, h.mac, why));
      }
    }
    if (h.id !== undefined && !DUID_RE.test(h.id)) {
      out.push(problem(`${p}@id`, h.id, "a client id may contain only hex digits and ':'"));
    }
    if (h.name !== undefined) {
      let why = validateHostname(h.name);
      if (!why && !/^[A-Za-z0-9]/.test(h.name)) why = 'host name must start with a letter or digit';
      if (why) out.push(problem(`${p}@name`, h.name, why));
    }
    if (h.ip === undefined) out.push(problem(`${p}@ip`, undefined, 'missing IP address in static host'));
    else checkInside(`${p}@ip`, h.ip, 'host address');
    if (ip.family === 'ipv4' && h.mac === undefined && h.name === undefined) {
      out.push(problem(p, undefined, 'a static host in an IPv4 network needs mac or name'));
    }
    if (ip.family === 'ipv6' && h.id === undefined && h.name === undefined) {
      out.push(problem(p, undefined, 'a static host in an IPv6 network needs id or name'));
    }
    checkLease(out, h.lease, p);
    const dup = (kind: keyof typeof seen, v: string | undefined): void => {
      if (v === undefined) return;
      const key = kind === 'name' || kind === 'mac' || kind === 'id' ? v.toLowerCase() : v;
      const prev = seen[kind].get(key);
      if (prev !== undefined)
        out.push(problem(`${p}@${kind}`, v, `duplicate ${kind} (also in host[${prev}])`));
      else seen[kind].set(key, i);
    };
    dup('mac', h.mac);
    dup('id', h.id);
    dup('ip', h.ip);
    dup('name', h.name);
  });

  if (dhcp.bootp) {
    const b = dhcp.bootp;
    const p = `${path}/bootp`;
    if (b.file === '') out.push(problem(`${p}@file`, b.file, 'boot file name must not be empty'));
    else {
      const why = dnsmasqSafe(b.file) ?? (/\s/.test(b.file) ? 'must not contain whitespace' : undefined);
      if (why) out.push(problem(`${p}@file`, b.file, why));
    }
    if (b.server !== undefined) {
      const why = validateIp(b.server, 'ipv4');
      if (why) out.push(problem(`${p}@server`, b.server, why));
    }
  }
}

/** All value problems of a network (empty when it is valid). */
export function validateNetwork(net: Network): Problem[] {
  const out: Problem[] = [];
  const P = 'network';

  const nameWhy = validateNetworkName(net.name);
  if (nameWhy) out.push(problem(`${P}/name`, net.name, nameWhy));
  if (net.title !== undefined && hasControlChars(net.title)) {
    out.push(problem(`${P}/title`, net.title, 'title must be one line without control characters'));
  }
  if (
    net.description !== undefined &&
    /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(net.description)
  ) {
    out.push(problem(`${P}/description`, net.description, 'description must not contain control characters'));
  }

  // forward
  const fwd = net.forward;
  fwd.interfaces.forEach((d, i) => {
    const why = validateIfname(d);
    if (why)
      out.push(
        problem(
          i === 0 && fwd.dev !== undefined ? `${P}/forward@dev` : `${P}/forward/interface[${i}]@dev`,
          d,
          why,
        ),
      );
  });
  if (fwd.nat?.address) {
    const a = fwd.nat.address;
    const p = `${P}/forward/nat/address`;
    const ws = validateIp(a.start, 'ipv4');
    const we = validateIp(a.end, 'ipv4');
    if (ws) out.push(problem(`${p}@start`, a.start, ws));
    if (we) out.push(problem(`${p}@end`, a.end, we));
    if (!ws && !we && compareIp(a.start, a.end) > 0) {
      out.push(problem(`${p}@end`, a.end, `address range end ${a.end} is before its start ${a.start}`));
    }
  }
  if (fwd.nat?.port) {
    const r = fwd.nat.port;
    const p = `${P}/forward/nat/port`;
    const okS = Number.isInteger(r.start) && r.start >= 1 && r.start <= 65535;
    const okE = Number.isInteger(r.end) && r.end >= 1 && r.end <= 65535;
    if (!okS) out.push(problem(`${p}@start`, String(r.start), 'port must be 1..65535'));
    if (!okE) out.push(problem(`${p}@end`, String(r.end), 'port must be 1..65535'));
    if (okS && okE && r.end < r.start)
      out.push(problem(`${p}@end`, String(r.end), `port range end ${r.end} is before its start ${r.start}`));
  }

  // bridge, mac, mtu
  if (net.bridge.name !== undefined) {
    const why = validateIfname(net.bridge.name);
    if (why) out.push(problem(`${P}/bridge@name`, net.bridge.name, why));
  }
  if (net.bridge.enslave !== undefined) {
    const ep = `${P}/virtnet:bridge@enslave`;
    const why = validateIfname(net.bridge.enslave);
    if (why) out.push(problem(ep, net.bridge.enslave, why));
    else if (net.forward.mode !== 'bridge')
      out.push(problem(ep, net.bridge.enslave, "enslaving a NIC needs <forward mode='bridge'/>"));
    else if (!net.bridge.name)
      out.push(problem(ep, net.bridge.enslave, "enslaving a NIC needs <bridge name='…'/>"));
    else if (net.bridge.enslave === net.bridge.name)
      out.push(problem(ep, net.bridge.enslave, 'the NIC to enslave cannot be the bridge itself'));
  }
  if (net.bridge.zone !== undefined && !ZONE_RE.test(net.bridge.zone)) {
    out.push(
      problem(
        `${P}/bridge@zone`,
        net.bridge.zone,
        'zone may contain only letters, digits, ., _ and - (1..64)',
      ),
    );
  }
  if (net.bridge.delay !== undefined && net.bridge.delay > 65535) {
    out.push(problem(`${P}/bridge@delay`, String(net.bridge.delay), 'delay must be 0..65535 seconds'));
  }
  if (net.mac !== undefined) {
    const why = validateMac(net.mac, { unicast: true });
    if (why) out.push(problem(`${P}/mac@address`, net.mac, why));
  }
  if (net.mtu !== undefined) {
    const hasV6 = net.ips.some((i) => i.family === 'ipv6');
    const min = hasV6 ? 1280 : 68;
    if (net.mtu < min || net.mtu > 65535) {
      out.push(
        problem(
          `${P}/mtu@size`,
          String(net.mtu),
          `mtu must be ${min}..65535${hasV6 ? ' (the network has IPv6)' : ''}`,
        ),
      );
    }
  }

  // domain
  if (net.domain) {
    const why = validateHostname(net.domain.name);
    if (why) out.push(problem(`${P}/domain@name`, net.domain.name, why));
    if (net.domain.register === true && net.domain.localOnly !== true) {
      out.push(problem(`${P}/domain@register`, 'yes', "register='yes' requires localOnly='yes'"));
    }
  }

  // dns
  if (net.dns) {
    const d = net.dns;
    const p = `${P}/dns`;
    if (d.enable === false && (d.forwarders.length || d.hosts.length || d.srvs.length || d.txts.length)) {
      out.push(problem(p, undefined, "DNS records or forwarders are not allowed when <dns enable='no'>"));
    }
    d.forwarders.forEach((f, i) => {
      const fp = `${p}/forwarder[${i}]`;
      if (f.addr === undefined && f.domain === undefined) {
        out.push(problem(fp, undefined, 'a forwarder needs addr or domain'));
      }
      if (f.addr !== undefined) {
        const why = validateIp(f.addr);
        if (why) out.push(problem(`${fp}@addr`, f.addr, why));
      }
      if (f.domain !== undefined) {
        const why = validateHostname(f.domain);
        if (why) out.push(problem(`${fp}@domain`, f.domain, why));
      }
      if (f.port !== undefined) {
        if (f.addr === undefined)
          out.push(problem(`${fp}@port`, String(f.port), 'port is only allowed with addr'));
        else if (f.port < 1 || f.port > 65535)
          out.push(problem(`${fp}@port`, String(f.port), 'port must be 1..65535'));
      }
    });
    d.hosts.forEach((h, i) => {
      const hp = `${p}/host[${i}]`;
      const why = validateIp(h.ip);
      if (why) out.push(problem(`${hp}@ip`, h.ip, why));
      if (h.hostnames.length === 0)
        out.push(problem(`${hp}/hostname`, undefined, 'a DNS host needs at least one <hostname>'));
      h.hostnames.forEach((n, j) => {
        const w = validateHostname(n);
        if (w) out.push(problem(`${hp}/hostname[${j}]`, n, w));
      });
    });
    d.srvs.forEach((s, i) => {
      const sp = `${p}/srv[${i}]`;
      if (s.service !== undefined) {
        if (s.service.length > MAX_SRV_SERVICE) {
          out.push(
            problem(`${sp}@service`, s.service, `service is longer than ${MAX_SRV_SERVICE} characters`),
          );
        } else if (s.service.length > MAX_SRV_LABEL) {
          out.push(
            problem(
              `${sp}@service`,
              s.service,
              `service is longer than ${MAX_SRV_LABEL} characters (it becomes the DNS label _service)`,
            ),
          );
        } else if (!SERVICE_RE.test(s.service)) {
          out.push(
            problem(`${sp}@service`, s.service, 'service may contain only letters, digits and _ - + *'),
          );
        }
      }
      if (s.protocol.length > MAX_SRV_LABEL) {
        out.push(
          problem(
            `${sp}@protocol`,
            s.protocol,
            `protocol is longer than ${MAX_SRV_LABEL} characters (it becomes the DNS label _protocol)`,
          ),
        );
      } else if (!PROTOCOL_RE.test(s.protocol)) {
        out.push(problem(`${sp}@protocol`, s.protocol, 'protocol may contain only letters, digits and - +'));
      }
      if (s.domain !== undefined) {
        const w = validateHostname(s.domain);
        if (w) out.push(problem(`${sp}@domain`, s.domain, w));
      }
      if (s.target !== undefined && s.target !== '.') {
        const w = validateHostname(s.target, { allowTrailingDot: true });
        if (w) out.push(problem(`${sp}@target`, s.target, w));
      }
      for (const k of ['port', 'priority', 'weight'] as const) {
        const v = s[k];
        if (v === undefined) continue;
        if (s.target === undefined)
          out.push(problem(`${sp}@${k}`, String(v), `${k} is not allowed without a target`));
        else if (k === 'port' && (v < 1 || v > 65535))
          out.push(problem(`${sp}@port`, String(v), 'port must be 1..65535'));
        else if (v > 65535) out.push(problem(`${sp}@${k}`, String(v), `${k} must be 0..65535`));
      }
    });
    d.txts.forEach((t, i) => {
      const tp = `${p}/txt[${i}]`;
      let w = dnsmasqSafe(t.name);
      if (!w && /\s/.test(t.name)) w = 'TXT record names must not contain whitespace';
      if (!w && t.name === '') w = 'TXT record name must not be empty';
      if (w) out.push(problem(`${tp}@name`, t.name, w));
      const wv = dnsmasqSafe(t.value);
      if (wv) out.push(problem(`${tp}@value`, t.value, wv));
    });
  }

  // ips
  let v4Dhcp = -1;
  let v6Dhcp = -1;
  net.ips.forEach((ip, i) => {
    const p = `${P}/ip[${i}]`;
    const ok = checkIp(out, ip, p);
    if (ip.tftpRoot !== undefined) {
      let w = dnsmasqSafe(ip.tftpRoot);
      if (!w && !ip.tftpRoot.startsWith('/')) w = 'tftp root must be an absolute path';
      if (!w && ip.tftpRoot.split('/').includes('..')) w = "tftp root must not contain '..'";
      if (w) out.push(problem(`${p}/tftp@root`, ip.tftpRoot, w));
    }
    checkDhcp(out, ip, `${p}/dhcp`, ok);
    const hasDhcp = !!ip.dhcp && (ip.dhcp.ranges.length > 0 || ip.dhcp.hosts.length > 0);
    if (hasDhcp) {
      const prev = ip.family === 'ipv4' ? v4Dhcp : v6Dhcp;
      if (prev >= 0) {
        out.push(
          problem(
            `${p}/dhcp`,
            undefined,
            `DHCP is supported on only one ${ip.family === 'ipv4' ? 'IPv4' : 'IPv6'} <ip> per network (ip[${prev}] has it)`,
          ),
        );
      } else if (ip.family === 'ipv4') v4Dhcp = i;
      else v6Dhcp = i;
    }
  });

  // routes
  net.routes.forEach((r, i) => {
    const p = `${P}/route[${i}]`;
    const wa = validateIp(r.address, r.family);
    if (wa) out.push(problem(`${p}@address`, r.address, wa));
    const wg = validateIp(r.gateway, r.family);
    if (wg) out.push(problem(`${p}@gateway`, r.gateway, wg));
    let ok = !wa && !wg;
    if (r.netmask !== undefined) {
      if (r.family === 'ipv6') {
        out.push(problem(`${p}@netmask`, r.netmask, 'netmask is not allowed for an IPv6 route (use prefix)'));
        ok = false;
      } else if (netmaskToPrefix(r.netmask) === undefined) {
        out.push(problem(`${p}@netmask`, r.netmask, 'not a contiguous IPv4 netmask'));
        ok = false;
      }
    }
    const max = r.family === 'ipv4' ? 32 : 128;
    if (r.prefix > max) {
      out.push(problem(`${p}@prefix`, String(r.prefix), `prefix must be 0..${max}`));
      ok = false;
    }
    if (r.metric !== undefined && (r.metric < 1 || r.metric > 0xffffffff)) {
      out.push(problem(`${p}@metric`, String(r.metric), 'metric must be 1..4294967295'));
    }
    if (!ok) return;
    if (!isNetworkAddress(r.address, r.prefix)) {
      out.push(
        problem(`${p}@address`, r.address, `${r.address} is not the network address of a /${r.prefix}`),
      );
    }
    const reachable = net.ips.some(
      (ip) =>
        ip.family === r.family &&
        validateIp(ip.address, ip.family) === undefined &&
        inSubnet(r.gateway, ip.address, ip.prefix),
    );
    if (!reachable) {
      out.push(
        problem(`${p}@gateway`, r.gateway, 'gateway is not inside the subnet of any <ip> of this network'),
      );
    }
  });

  // mode-specific
  if (fwd.mode === 'bridge') {
    if (net.ips.length > 0)
      out.push(problem(`${P}/ip`, undefined, "<ip> is not allowed with forward mode 'bridge'"));
    if (net.routes.length > 0)
      out.push(problem(`${P}/route`, undefined, "<route> is not allowed with forward mode 'bridge'"));
    if (net.dns && (net.dns.hosts.length || net.dns.srvs.length || net.dns.txts.length)) {
      out.push(problem(`${P}/dns`, undefined, "DNS records are not allowed with forward mode 'bridge'"));
    }
    if (net.domain)
      out.push(problem(`${P}/domain`, undefined, "<domain> is not allowed with forward mode 'bridge'"));
    if (net.mac !== undefined)
      out.push(problem(`${P}/mac`, net.mac, "<mac> is not allowed with forward mode 'bridge'"));
  }

  // dnsmasq:options
  net.dnsmasqOptions.forEach((v, i) => {
    const p = `${P}/dnsmasq:options/option[${i}]@value`;
    if (v.trim() === '') out.push(problem(p, v, 'dnsmasq option must not be empty'));
    else {
      const w = dnsmasqSafe(v, 'line');
      if (w) out.push(problem(p, v, w));
    }
  });
  out.push(...validateSpan(net));
  return out;
}
