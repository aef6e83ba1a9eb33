/**
 * The one place that lists libvirt conformance cases virtnet does not pass, each with the reason.
 * Every conformance suite reads this file: a case listed here is reported as "unsupported (reason)"
 * and not run; every case NOT listed must pass. Keys are case names as in
 * ../shared/conformance/libvirt/cases.json.
 */

export const unsupported: Record<string, Record<string, string>> = {
  /** networkxml2confdata: network XML → dnsmasq config (+ hostsfile). */
  networkxml2conf: {},
  /**
   * networkxml2firewalldata (libvirt 9.9 iptables command logs). Firewall keys are `<case>#<backend>`
   * (backend `iptables` or `nftables`): one entry per comparison that is not run.
   */
  networkxml2firewall_v9_9_0: {},
  /**
   * networkxml2firewalldata-nft (libvirt ≥ 10 nftables and iptables command logs), keyed like the
   * folder above. Every (case, backend) the transcription has no expected log for must be listed here.
   */
  networkxml2firewall_nft: {
    'nat-tftp#nftables':
      'no expected nftables log: the transcription stored only intermediate upstream versions (iifname / guest_to_host chains), see SOURCES.txt',
    'nat-no-dhcp#nftables':
      'no expected nftables log: the transcription stored only intermediate upstream versions (iifname / guest_to_host chains), see SOURCES.txt',
    'nat-default#iptables':
      'no libvirt >= 10 iptables log in the transcription; the last confirmed iptables output (9.9) passes in networkxml2firewall_v9_9_0',
    'nat-ipv6#iptables':
      'no libvirt >= 10 iptables log in the transcription; the last confirmed iptables output (9.9) passes in networkxml2firewall_v9_9_0',
    'nat-ipv6-masquerade#iptables':
      'no libvirt >= 10 iptables log in the transcription; the last confirmed iptables output (9.9) passes in networkxml2firewall_v9_9_0',
    'route-default#iptables':
      'no libvirt >= 10 iptables log in the transcription; the last confirmed iptables output (9.9) passes in networkxml2firewall_v9_9_0',
  },
  /** networkxml2xmlin → networkxml2xmlout round trip. */
  networkxml2xml: {
    '8021Qbh-net':
      "forward mode 'private' with <virtualport type='802.1Qbh'> and <vlan> (macvtap/SR-IOV) is not implemented",
    'direct-net':
      "forward mode 'bridge' with <interface> devices and no <bridge name> is a macvtap 'direct' network, not implemented",
    'vepa-net': "forward mode 'vepa' with <virtualport> and <portgroup> (macvtap) is not implemented",
    'bandwidth-network':
      '<bandwidth> (QoS) is accepted with an "ignored" warning and not kept, so it is not formatted back',
    'openvswitch-net': "<virtualport type='openvswitch'> and <portgroup> (Open vSwitch) are not implemented",
    'passthrough-pf': "forward mode 'passthrough' with <pf> (SR-IOV) is not implemented",
    hostdev: "forward mode 'hostdev' with PCI <address> (SR-IOV VF assignment) is not implemented",
    'hostdev-pf': "forward mode 'hostdev' with <pf> and <driver> (SR-IOV) is not implemented",
    'passthrough-address-crash': "forward mode 'passthrough' with PCI <address> (SR-IOV) is not implemented",
    'isolated-ports': '<port isolated> is rejected: virtnet does not implement bridge port isolation',
  },
  /** virNetworkUpdate cases. */
  networkxml2xmlupdate: {
    'insert-portgroup':
      '<portgroup> is not supported by virtnet (and the base network openvswitch-net is rejected)',
    'append-duplicate-portgroup':
      '<portgroup> is not supported by virtnet (it would fail for that reason, not the duplicate)',
    'modify-portgroup': '<portgroup> is not supported by virtnet',
    'modify-missing-portgroup':
      '<portgroup> is not supported by virtnet (it would fail for that reason, not the missing group)',
    'delete-portgroup': '<portgroup> is not supported by virtnet',
    'delete-missing-portgroup':
      '<portgroup> is not supported by virtnet (it would fail for that reason, not the missing group)',
  },
};
