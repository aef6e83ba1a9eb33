/**
 * The dnsmasq planner: config text, DHCP hostsfile and addn-hosts file of a network, byte for byte as
 * libvirt writes them (paths and header aside), and the command line virtnet runs dnsmasq with.
 * Pure: no I/O. See dnsmasq/conf.ts, dnsmasq/hosts.ts and dnsmasq/argv.ts.
 */

export { type DnsmasqArgvOptions, dnsmasqArgv } from './dnsmasq/argv.js';
export {
  DNSMASQ_DEFAULT_VERSION,
  DNSMASQ_MIN_VERSION,
  type DnsmasqConfOptions,
  type DnsmasqPaths,
  libvirtDnsmasqPaths,
  libvirtHeader,
  needsDnsmasq,
  renderDnsmasqConf,
  virtnetHeader,
} from './dnsmasq/conf.js';
export { renderAddnhosts, renderHostsfile, withLiveHost } from './dnsmasq/hosts.js';
