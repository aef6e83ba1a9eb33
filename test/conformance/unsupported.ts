/**
 * The one place that lists libvirt conformance cases virtnet does not pass, each with the reason.
 * Every conformance suite reads this file: a case listed here is reported as "unsupported (reason)"
 * and not run; every case NOT listed must pass. Keys are case names as in
 * ../shared/conformance/libvirt/cases.json.
 */

export const unsupported: Record<string, Record<string, string>> = {
  /** networkxml2confdata: network XML → dnsmasq config (+ hostsfile). */
  networkxml2conf: {},
  /** networkxml2firewalldata (libvirt 9.9 iptables command logs). */
  networkxml2firewall_v9_9_0: {},
  /** networkxml2firewalldata-nft (libvirt ≥ 10 nftables and iptables command logs). */
  networkxml2firewall_nft: {},
  /** networkxml2xmlin → networkxml2xmlout round trip. */
  networkxml2xml: {},
  /** virNetworkUpdate cases. */
  networkxml2xmlupdate: {},
};
