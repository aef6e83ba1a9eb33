/**
 * Format a `Network` back to XML exactly as libvirt 9.x formats network XML (virNetworkDefFormatBuf):
 * single-quoted attributes, 2-space indentation, libvirt's element order (name, uuid, title,
 * description, metadata, forward, bridge, mtu, mac, domain, dns, ip…, route…, dnsmasq:options) and
 * libvirt's implied values (e.g. `<forward dev>` repeated as the first `<interface>`, `stp`/`delay`
 * on the bridge of networks that own their bridge, lease units).
 */

import type { Dns, IpDef, LeaseTime, Network, Route } from './network.js';
import { DNSMASQ_NS, VIRTNET_NET_NS } from './parse-network.js';
import { formatSpanXml } from './span.js';
import { escapeAttr, escapeText } from './xml.js';

export interface FormatOptions {
  /** libvirt's VIR_NETWORK_XML_INACTIVE: omit status-only data (virtnet's model holds none). */
  inactive?: boolean;
}

const yn = (b: boolean): string => (b ? 'yes' : 'no');

/** ` name='value'` with the value escaped, or '' when undefined. */
function a(name: string, value: string | number | undefined): string {
  if (value === undefined) return '';
  return ` ${name}='${escapeAttr(String(value))}'`;
}

function leaseLine(lease: LeaseTime): string {
  return lease.expiry === 0
    ? "<lease expiry='0'/>"
    : `<lease expiry='${lease.expiry}' unit='${lease.unit}'/>`;
}

function formatDns(dns: Dns, out: string[], ind: string): void {
  const hasChildren =
    dns.forwarders.length > 0 || dns.hosts.length > 0 || dns.srvs.length > 0 || dns.txts.length > 0;
  if (dns.enable === undefined && dns.forwardPlainNames === undefined && !hasChildren) return;
  let open = `${ind}<dns`;
  if (dns.enable !== undefined) open += a('enable', yn(dns.enable));
  if (dns.forwardPlainNames !== undefined) open += a('forwardPlainNames', yn(dns.forwardPlainNames));
  if (!hasChildren) {
    out.push(`${open}/>`);
    return;
  }
  out.push(`${open}>`);
  const i2 = `${ind}  `;
  for (const f of dns.forwarders) {
    let l = `${i2}<forwarder${a('domain', f.domain)}`;
    if (f.addr !== undefined) {
      l += a('addr', f.addr);
      if (f.port !== undefined && f.port > 0) l += a('port', f.port);
    }
    out.push(`${l}/>`);
  }
  for (const t of dns.txts) out.push(`${i2}<txt${a('name', t.name)}${a('value', t.value)}/>`);
  for (const s of dns.srvs) {
    if (s.service === undefined) continue; // libvirt formats only records with service and protocol
    let l = `${i2}<srv${a('service', s.service)}${a('protocol', s.protocol)}${a('domain', s.domain)}${a('target', s.target)}`;
    if (s.port) l += a('port', s.port);
    if (s.priority) l += a('priority', s.priority);
    if (s.weight) l += a('weight', s.weight);
    out.push(`${l}/>`);
  }
  for (const h of dns.hosts) {
    out.push(`${i2}<host${a('ip', h.ip)}>`);
    for (const n of h.hostnames) out.push(`${i2}  <hostname>${escapeText(n)}</hostname>`);
    out.push(`${i2}</host>`);
  }
  out.push(`${ind}</dns>`);
}

function formatIp(ip: IpDef, out: string[], ind: string): void {
  let open = `${ind}<ip`;
  if (ip.explicitFamily) open += a('family', ip.family);
  open += a('address', ip.address);
  if (ip.netmask !== undefined) open += a('netmask', ip.netmask);
  if (ip.explicitPrefix && ip.prefix > 0) open += a('prefix', ip.prefix);
  if (ip.localPtr !== undefined) open += a('localPtr', yn(ip.localPtr));
  out.push(`${open}>`);
  const i2 = `${ind}  `;
  const i3 = `${i2}  `;
  if (ip.tftpRoot !== undefined) out.push(`${i2}<tftp${a('root', ip.tftpRoot)}/>`);
  const d = ip.dhcp;
  if (d && (d.ranges.length > 0 || d.hosts.length > 0)) {
    out.push(`${i2}<dhcp>`);
    for (const r of d.ranges) {
      const attrs = `${a('start', r.start)}${a('end', r.end)}`;
      if (r.lease) out.push(`${i3}<range${attrs}>`, `${i3}  ${leaseLine(r.lease)}`, `${i3}</range>`);
      else out.push(`${i3}<range${attrs}/>`);
    }
    for (const h of d.hosts) {
      const attrs = `${a('mac', h.mac)}${a('id', h.id)}${a('name', h.name)}${a('ip', h.ip)}`;
      if (h.lease) out.push(`${i3}<host${attrs}>`, `${i3}  ${leaseLine(h.lease)}`, `${i3}</host>`);
      else out.push(`${i3}<host${attrs}/>`);
    }
    if (d.bootp) out.push(`${i3}<bootp${a('file', d.bootp.file)}${a('server', d.bootp.server)}/>`);
    out.push(`${i2}</dhcp>`);
  }
  out.push(`${ind}</ip>`);
}

function formatRoute(r: Route, out: string[], ind: string): void {
  let l = `${ind}<route`;
  if (r.explicitFamily) l += a('family', r.family);
  l += a('address', r.address);
  if (r.netmask !== undefined) l += a('netmask', r.netmask);
  if (r.explicitPrefix) l += a('prefix', r.prefix);
  l += a('gateway', r.gateway);
  if (r.metric !== undefined) l += a('metric', r.metric);
  out.push(`${l}/>`);
}

/** libvirt's network XML for `net` (ends with a newline). */
export function formatNetworkXml(net: Network, opts: FormatOptions = {}): string {
  void opts.inactive; // nothing status-only is modelled; kept for libvirt's flag semantics
  const out: string[] = [];
  let root = '<network';
  if (net.dnsmasqOptions.length > 0) root += ` xmlns:dnsmasq='${DNSMASQ_NS}'`;
  if (net.bridge.enslave !== undefined || net.span) root += ` xmlns:virtnet='${VIRTNET_NET_NS}'`;
  if (net.ipv6) root += " ipv6='yes'";
  if (net.trustGuestRxFilters !== undefined) root += a('trustGuestRxFilters', yn(net.trustGuestRxFilters));
  out.push(`${root}>`);
  const I = '  ';
  out.push(`${I}<name>${escapeText(net.name)}</name>`);
  out.push(`${I}<uuid>${escapeText(net.uuid)}</uuid>`);
  if (net.title !== undefined) out.push(`${I}<title>${escapeText(net.title)}</title>`);
  if (net.description !== undefined)
    out.push(`${I}<description>${escapeText(net.description)}</description>`);
  if (net.metadataXml !== undefined) {
    out.push(`${I}<metadata>`);
    for (const l of net.metadataXml.split('\n')) out.push(`${I}  ${l}`);
    out.push(`${I}</metadata>`);
  }

  const f = net.forward;
  if (f.mode !== 'none') {
    const dev = f.interfaces[0];
    const nat = f.mode === 'nat' ? f.nat : undefined;
    const natHasBody = !!nat && (nat.address !== undefined || nat.port !== undefined);
    const natPrinted = !!nat && (natHasBody || nat.ipv6 !== undefined);
    const short = f.interfaces.length === 0 && !natPrinted;
    out.push(`${I}<forward${a('dev', dev)}${a('mode', f.mode)}${short ? '/' : ''}>`);
    if (!short) {
      const i2 = `${I}  `;
      if (nat && natPrinted) {
        const ipv6 = nat.ipv6 !== undefined ? a('ipv6', yn(nat.ipv6)) : '';
        if (!natHasBody) out.push(`${i2}<nat${ipv6}/>`);
        else {
          out.push(`${i2}<nat${ipv6}>`);
          if (nat.address)
            out.push(`${i2}  <address${a('start', nat.address.start)}${a('end', nat.address.end)}/>`);
          if (nat.port)
            out.push(
              `${i2}  <port${a('start', nat.port.start)}${nat.port.end ? a('end', nat.port.end) : ''}/>`,
            );
          out.push(`${i2}</nat>`);
        }
      }
      for (const d of f.interfaces) out.push(`${i2}<interface${a('dev', d)}/>`);
      out.push(`${I}</forward>`);
    }
  }

  const ownsBridge = f.mode === 'none' || f.mode === 'nat' || f.mode === 'route' || f.mode === 'open';
  const b = net.bridge;
  if (ownsBridge || b.name !== undefined || b.macTableManager !== undefined) {
    let l = `${I}<bridge${a('name', b.name)}${a('zone', b.zone)}`;
    if (ownsBridge) l += ` stp='${b.stp === false ? 'off' : 'on'}' delay='${b.delay ?? 0}'`;
    if (b.macTableManager !== undefined) l += a('macTableManager', b.macTableManager);
    out.push(`${l}/>`);
  }
  if (net.mtu !== undefined && net.mtu > 0) out.push(`${I}<mtu size='${net.mtu}'/>`);
  if (net.mac !== undefined) out.push(`${I}<mac${a('address', net.mac)}/>`);
  if (net.domain) {
    const d = net.domain;
    let l = `${I}<domain${a('name', d.name)}`;
    if (d.localOnly !== undefined) l += a('localOnly', yn(d.localOnly));
    if (d.register !== undefined) l += a('register', yn(d.register));
    out.push(`${l}/>`);
  }
  if (net.dns) formatDns(net.dns, out, I);
  for (const ip of net.ips) formatIp(ip, out, I);
  for (const r of net.routes) formatRoute(r, out, I);
  if (net.dnsmasqOptions.length > 0) {
    out.push(`${I}<dnsmasq:options>`);
    for (const v of net.dnsmasqOptions) out.push(`${I}  <dnsmasq:option${a('value', v)}/>`);
    out.push(`${I}</dnsmasq:options>`);
  }
  if (net.bridge.enslave !== undefined) out.push(`${I}<virtnet:bridge${a('enslave', net.bridge.enslave)}/>`);
  if (net.span) out.push(...formatSpanXml(net.span, I));
  out.push('</network>');
  return `${out.join('\n')}\n`;
}
