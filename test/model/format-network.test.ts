import { describe, expect, it } from 'vitest';
import { formatNetworkXml } from '../../src/model/format-network.js';
import type { Network } from '../../src/model/network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';

function base(over: Partial<Network> = {}): Network {
  return {
    name: 'n',
    uuid: '81ff0d90-c91e-6742-64da-4a736edb9a9b',
    forward: { mode: 'none', interfaces: [] },
    bridge: {},
    ips: [],
    routes: [],
    dnsmasqOptions: [],
    ignored: [],
    ...over,
  };
}

describe('formatNetworkXml', () => {
  it('formats an isolated network with libvirt bridge defaults', () => {
    expect(formatNetworkXml(base())).toBe(
      "<network>\n  <name>n</name>\n  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>\n  <bridge stp='on' delay='0'/>\n</network>\n",
    );
  });

  it('prints no stp/delay for a host bridge network', () => {
    const x = formatNetworkXml(
      base({ forward: { mode: 'bridge', interfaces: [] }, bridge: { name: 'br0' } }),
    );
    expect(x).toContain("  <forward mode='bridge'/>\n  <bridge name='br0'/>\n");
  });

  it('escapes attribute and text values', () => {
    const x = formatNetworkXml(
      base({
        name: `a<b>&'"`,
        title: 't&t',
        dns: { forwarders: [], hosts: [], srvs: [], txts: [{ name: 'k', value: `"x'<y>&` }] },
      }),
    );
    expect(x).toContain('<name>a&lt;b&gt;&amp;&apos;&quot;</name>');
    expect(x).toContain('<title>t&amp;t</title>');
    expect(x).toContain("<txt name='k' value='&quot;x&apos;&lt;y&gt;&amp;'/>");
  });

  it('formats forward, nat, dns, leases, routes and dnsmasq options in libvirt order', () => {
    const n = base({
      ipv6: true,
      trustGuestRxFilters: true,
      forward: {
        mode: 'nat',
        dev: 'eth0',
        interfaces: ['eth0'],
        nat: { ipv6: false, port: { start: 1024, end: 65535 } },
      },
      bridge: { name: 'virbr3', stp: false, delay: 5, zone: 'z' },
      mtu: 9000,
      mac: '52:54:00:00:00:01',
      domain: { name: 'ex.com', localOnly: true },
      dns: {
        enable: true,
        forwarders: [{ addr: '1.1.1.1', port: 5353, domain: 'x.com' }],
        hosts: [{ ip: '10.0.0.5', hostnames: ['a', 'b'] }],
        srvs: [{ service: 's', protocol: 'tcp', target: 't', port: 1, priority: 0, weight: 3 }],
        txts: [{ name: 'k', value: 'v' }],
      },
      ips: [
        {
          family: 'ipv4',
          address: '10.0.0.1',
          prefix: 24,
          explicitPrefix: true,
          localPtr: false,
          dhcp: {
            ranges: [{ start: '10.0.0.2', end: '10.0.0.9', lease: { expiry: 30, unit: 'minutes' } }],
            hosts: [{ mac: '52:54:00:00:00:02', ip: '10.0.0.3', lease: { expiry: 0, unit: 'minutes' } }],
            bootp: { file: 'pxe', server: '10.0.0.4' },
          },
        },
      ],
      routes: [
        {
          family: 'ipv4',
          address: '10.9.0.0',
          prefix: 16,
          explicitPrefix: true,
          gateway: '10.0.0.7',
          metric: 2,
        },
      ],
      dnsmasqOptions: ['log-queries'],
    });
    expect(
      formatNetworkXml(n),
    ).toBe(`<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0' ipv6='yes' trustGuestRxFilters='yes'>
  <name>n</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <forward dev='eth0' mode='nat'>
    <nat ipv6='no'>
      <port start='1024' end='65535'/>
    </nat>
    <interface dev='eth0'/>
  </forward>
  <bridge name='virbr3' zone='z' stp='off' delay='5'/>
  <mtu size='9000'/>
  <mac address='52:54:00:00:00:01'/>
  <domain name='ex.com' localOnly='yes'/>
  <dns enable='yes'>
    <forwarder domain='x.com' addr='1.1.1.1' port='5353'/>
    <txt name='k' value='v'/>
    <srv service='s' protocol='tcp' target='t' port='1' weight='3'/>
    <host ip='10.0.0.5'>
      <hostname>a</hostname>
      <hostname>b</hostname>
    </host>
  </dns>
  <ip address='10.0.0.1' prefix='24' localPtr='no'>
    <dhcp>
      <range start='10.0.0.2' end='10.0.0.9'>
        <lease expiry='30' unit='minutes'/>
      </range>
      <host mac='52:54:00:00:00:02' ip='10.0.0.3'>
        <lease expiry='0'/>
      </host>
      <bootp file='pxe' server='10.0.0.4'/>
    </dhcp>
  </ip>
  <route address='10.9.0.0' prefix='16' gateway='10.0.0.7' metric='2'/>
  <dnsmasq:options>
    <dnsmasq:option value='log-queries'/>
  </dnsmasq:options>
</network>
`);
  });

  it('round-trips its own output through the parser', () => {
    const x = `<network><name>r</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid><title>T</title>
      <description>d</description><metadata><m:a xmlns:m='urn:m'><m:b>t</m:b></m:a></metadata>
      <forward mode='route' dev='eth9'/><ip family='ipv6' address='fd00::1' prefix='64'><dhcp><range start='fd00::10' end='fd00::20'/></dhcp></ip></network>`;
    const once = formatNetworkXml(parseNetworkXml(x).network);
    expect(formatNetworkXml(parseNetworkXml(once).network)).toBe(once);
    expect(once).toContain(
      '  <metadata>\n    <m:a xmlns:m="urn:m">\n      <m:b>t</m:b>\n    </m:a>\n  </metadata>\n',
    );
  });
});
