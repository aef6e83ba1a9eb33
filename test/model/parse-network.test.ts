import { describe, expect, it } from 'vitest';
import { type Problem, ValidationError } from '../../src/errors.js';
import { formatNetworkXml } from '../../src/model/format-network.js';
import { defaultPrefix, parseNetworkXml } from '../../src/model/parse-network.js';

const NAT = `<network>
  <name>default</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <forward mode='nat' dev='eth1'/>
  <bridge name='virbr0'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
      <host mac='52:54:00:AA:bb:01' name='a' ip='192.168.122.10'/>
    </dhcp>
  </ip>
</network>`;

/** The problems parseNetworkXml reports (fails the test when it does not throw ValidationError). */
function problems(xml: unknown): Problem[] {
  try {
    parseNetworkXml(xml as string);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).problems;
  }
  throw new Error('expected a ValidationError');
}

function net(inner: string, attrs = ''): string {
  return `<network${attrs}><name>n</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>${inner}</network>`;
}

describe('parseNetworkXml: the model', () => {
  it('parses a NAT network', () => {
    const { network, warnings } = parseNetworkXml(NAT);
    expect(warnings).toEqual([]);
    expect(network.name).toBe('default');
    expect(network.forward).toEqual({ mode: 'nat', dev: 'eth1', interfaces: ['eth1'] });
    expect(network.bridge).toEqual({ name: 'virbr0' });
    expect(network.ips).toHaveLength(1);
    const ip = network.ips[0]!;
    expect(ip).toMatchObject({
      family: 'ipv4',
      address: '192.168.122.1',
      prefix: 24,
      netmask: '255.255.255.0',
    });
    expect(ip.dhcp?.ranges).toEqual([{ start: '192.168.122.2', end: '192.168.122.254' }]);
    expect(ip.dhcp?.hosts).toEqual([{ mac: '52:54:00:aa:bb:01', name: 'a', ip: '192.168.122.10' }]);
    expect(network.ignored).toEqual([]);
    expect(network.dnsmasqOptions).toEqual([]);
  });

  it('no <forward> is isolated; <forward/> without mode is nat', () => {
    expect(parseNetworkXml(net('')).network.forward.mode).toBe('none');
    const x = net("<forward/><ip address='10.0.0.1' prefix='24'/>");
    expect(parseNetworkXml(x).network.forward).toEqual({ mode: 'nat', interfaces: [] });
  });

  it('generates a v4 UUID when absent, with an injectable generator', () => {
    const { network } = parseNetworkXml('<network><name>x</name></network>');
    expect(network.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const r = parseNetworkXml('<network><name>x</name></network>', { randomUuid: () => 'fixed' });
    expect(r.network.uuid).toBe('fixed');
  });

  it('normalizes the UUID, MACs and IPv6 addresses', () => {
    const { network } = parseNetworkXml(
      `<network><name>x</name><uuid>81FF0D90C91E674264DA4A736EDB9A9B</uuid><mac address='52:54:00:AB:CD:EF'/>
       <ip family='ipv6' address='2001:DB8:0:0::1' prefix='64'/></network>`,
    );
    expect(network.uuid).toBe('81ff0d90-c91e-6742-64da-4a736edb9a9b');
    expect(network.mac).toBe('52:54:00:ab:cd:ef');
    expect(network.ips[0]).toMatchObject({
      family: 'ipv6',
      address: '2001:db8::1',
      prefix: 64,
      explicitPrefix: true,
      explicitFamily: true,
    });
  });

  it('derives classful IPv4 prefixes and 64 for IPv6, like libvirt', () => {
    expect(defaultPrefix('10.24.10.1')).toBe(8);
    expect(defaultPrefix('172.16.0.1')).toBe(16);
    expect(defaultPrefix('192.168.1.1')).toBe(24);
    expect(defaultPrefix('224.0.0.1')).toBeUndefined();
    expect(defaultPrefix('fd00::1')).toBe(64);
    expect(defaultPrefix('nope')).toBeUndefined();
    expect(problems(net("<ip address='230.0.0.1'/>"))[0]?.path).toBe('network/ip[0]@prefix');
  });

  it('parses dns, domain, mtu, routes, nat, leases, bootp, tftp, metadata and dnsmasq options', () => {
    const x = `<network xmlns:dm='http://libvirt.org/schemas/network/dnsmasq/1.0' ipv6='yes' trustGuestRxFilters='no'>
      <name>full</name><title>T</title><description>line1
line2</description>
      <metadata><a:x xmlns:a='urn:a' k='v'>text</a:x></metadata>
      <forward mode='nat'><nat ipv6='yes'><address start='1.2.3.4' end='1.2.3.5'/><port start='1024' end='2048'/></nat></forward>
      <bridge name='vb1' stp='off' delay='2' macTableManager='libvirt' zone='trusted'/>
      <mtu size='9000'/>
      <domain name='example.com' localOnly='yes' register='yes'/>
      <dns enable='yes' forwardPlainNames='no'>
        <forwarder addr='8.8.8.8' port='5353'/><forwarder domain='corp.example'/>
        <host ip='192.168.1.5'><hostname>h1</hostname><hostname>h2</hostname></host>
        <srv service='ldap' protocol='tcp' domain='example.com' target='ldap.example.com' port='389' priority='1' weight='2'/>
        <txt name='k' value='some text'/>
      </dns>
      <ip address='192.168.1.1' prefix='24' localPtr='yes'>
        <tftp root='/srv/tftp'/>
        <dhcp><range start='192.168.1.100' end='192.168.1.200'><lease expiry='1' unit='hours'/></range>
          <host mac='52:54:00:00:00:01' ip='192.168.1.7'><lease expiry='0'/></host>
          <bootp file='pxelinux.0' server='192.168.1.2'/></dhcp>
      </ip>
      <route address='10.1.0.0' prefix='16' gateway='192.168.1.9' metric='5'/>
      <dm:options><dm:option value='log-queries'/></dm:options>
    </network>`;
    const { network: n } = parseNetworkXml(x);
    expect(n.ipv6).toBe(true);
    expect(n.trustGuestRxFilters).toBe(false);
    expect(n.title).toBe('T');
    expect(n.description).toBe('line1\nline2');
    expect(n.metadataXml).toBe('<a:x xmlns:a="urn:a" k="v">text</a:x>');
    expect(n.forward.nat).toEqual({
      ipv6: true,
      address: { start: '1.2.3.4', end: '1.2.3.5' },
      port: { start: 1024, end: 2048 },
    });
    expect(n.bridge).toEqual({
      name: 'vb1',
      stp: false,
      delay: 2,
      macTableManager: 'libvirt',
      zone: 'trusted',
    });
    expect(n.mtu).toBe(9000);
    expect(n.domain).toEqual({ name: 'example.com', localOnly: true, register: true });
    expect(n.dns).toEqual({
      enable: true,
      forwardPlainNames: false,
      forwarders: [{ addr: '8.8.8.8', port: 5353 }, { domain: 'corp.example' }],
      hosts: [{ ip: '192.168.1.5', hostnames: ['h1', 'h2'] }],
      srvs: [
        {
          service: 'ldap',
          protocol: 'tcp',
          domain: 'example.com',
          target: 'ldap.example.com',
          port: 389,
          priority: 1,
          weight: 2,
        },
      ],
      txts: [{ name: 'k', value: 'some text' }],
    });
    const ip = n.ips[0]!;
    expect(ip.localPtr).toBe(true);
    expect(ip.tftpRoot).toBe('/srv/tftp');
    expect(ip.dhcp?.ranges[0]?.lease).toEqual({ expiry: 1, unit: 'hours' });
    expect(ip.dhcp?.hosts[0]?.lease).toEqual({ expiry: 0, unit: 'minutes' });
    expect(ip.dhcp?.bootp).toEqual({ file: 'pxelinux.0', server: '192.168.1.2' });
    expect(n.routes).toEqual([
      {
        family: 'ipv4',
        address: '10.1.0.0',
        prefix: 16,
        explicitPrefix: true,
        gateway: '192.168.1.9',
        metric: 5,
      },
    ]);
    expect(n.dnsmasqOptions).toEqual(['log-queries']);
  });

  it('fills defaults on request', () => {
    const { network } = parseNetworkXml(net("<ip address='10.0.0.1' prefix='24'/>"), {
      fillDefaults: true,
      defaults: { usedBridgeNames: ['virbr0'], randomMac: () => '52:54:00:01:02:03' },
    });
    expect(network.bridge).toEqual({ name: 'virbr1', stp: true, delay: 0 });
    expect(network.mac).toBe('52:54:00:01:02:03');
  });
});

describe('parseNetworkXml: unsupported and ignored libvirt features', () => {
  it('ignores <bandwidth> with a warning', () => {
    const r = parseNetworkXml(
      net("<bandwidth><inbound average='1000'/></bandwidth><ip address='10.0.0.1' prefix='24'/>"),
    );
    expect(r.warnings).toEqual(['network/bandwidth: ignored: QoS (<bandwidth>) is not applied by virtnet']);
    expect(r.network.ignored).toEqual([
      { path: 'network/bandwidth', reason: 'QoS (<bandwidth>) is not applied by virtnet' },
    ]);
  });
  it('ignores the status-only connections attribute silently', () => {
    expect(parseNetworkXml(net('', " connections='3'")).warnings).toEqual([]);
  });
  it.each([
    [
      "<forward mode='private' dev='eth0'/>",
      'network/forward@mode',
      "forward mode 'private' is not supported",
    ],
    ["<forward mode='vepa' dev='eth0'/>", 'network/forward@mode', "forward mode 'vepa' is not supported"],
    [
      "<forward mode='passthrough' dev='eth0'/>",
      'network/forward@mode',
      "forward mode 'passthrough' is not supported",
    ],
    ["<forward mode='hostdev'/>", 'network/forward@mode', "forward mode 'hostdev' is not supported"],
    ["<forward mode='bogus'/>", 'network/forward@mode', "unknown forward mode 'bogus'"],
    ["<forward mode='bridge'><interface dev='eth0'/></forward>", 'network/forward@mode', 'macvtap'],
    ["<forward mode='bridge'/>", 'network/bridge@name', "needs <bridge name='…'>"],
    ["<forward mode='nat' managed='yes'/>", 'network/forward@managed', 'not supported'],
    [
      "<forward mode='nat'><pf dev='eth0'/></forward><ip address='10.0.0.1' prefix='24'/>",
      'network/forward/pf',
      'not supported',
    ],
    [
      "<forward mode='nat'><address type='pci'/></forward><ip address='10.0.0.1' prefix='24'/>",
      'network/forward/address',
      'not supported',
    ],
    [
      "<forward mode='nat'><driver name='vfio'/></forward><ip address='10.0.0.1' prefix='24'/>",
      'network/forward/driver',
      'not supported',
    ],
    ["<virtualport type='openvswitch'/>", 'network/virtualport', 'not supported'],
    ["<vlan><tag id='42'/></vlan>", 'network/vlan', 'not supported'],
    ["<portgroup name='p'/>", 'network/portgroup', 'not supported'],
    ["<port isolated='yes'/>", 'network/port', 'not supported'],
  ])('%s → %s', (inner, path, reason) => {
    const ps = problems(net(inner));
    expect(ps.find((p) => p.path === path)?.reason).toContain(reason);
  });
  it('does not pile mode-dependent noise onto an unsupported mode', () => {
    const ps = problems(net("<forward mode='vepa'><interface dev='a'/><interface dev='b'/></forward>"));
    expect(ps.map((p) => p.path)).toEqual(['network/forward@mode']);
  });
});

describe('parseNetworkXml: structural errors', () => {
  it.each([
    [42, 'xml', 'must be a string'],
    ['', 'xml', 'not well-formed'],
    ['not xml at all', 'xml', 'not well-formed'],
    ['<network><name>x</name>', 'xml', 'not well-formed'],
    ['<network a="1" a="2"><name>x</name></network>', 'xml', 'not well-formed'],
    ['<!DOCTYPE network [<!ENTITY x "y">]><network><name>&x;</name></network>', 'xml', 'DOCTYPE'],
    ['<network><name>&x;</name></network>', 'xml', 'predefined entities'],
    ['<network><name><![CDATA[x]]></name></network>', 'xml', 'CDATA'],
    ['<domain><name>x</name></domain>', 'domain', 'expected root element <network>'],
    ['<network/><network/>', 'xml', 'exactly one root'],
    ['<network><name>x</name><foo/></network>', 'network/foo', 'unknown element <foo>'],
    ['<network><name>x</name><x:foo xmlns:x="urn:x"/></network>', 'network/x:foo', 'unknown element'],
    ['<network><name>x</name><p:foo/></network>', 'xml', 'undeclared namespace prefix'],
    ['<network bogus="1"><name>x</name></network>', 'network@bogus', "unknown attribute 'bogus'"],
    ['<network><name>x</name>stray</network>', 'network', 'unexpected text'],
    [
      '<network><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid></network>',
      'network/name',
      'missing required element <name>',
    ],
    ['<network><name>x</name><name>y</name></network>', 'network/name', 'only once'],
    ['<network><name>x</name><uuid>nope</uuid></network>', 'network/uuid', 'not a UUID'],
    ['<network ipv6="maybe"><name>x</name></network>', 'network@ipv6', "'yes' or 'no'"],
    ["<network><name>x</name><bridge stp='yes'/></network>", 'network/bridge@stp', "'on' or 'off'"],
    [
      "<network><name>x</name><bridge delay='-1'/></network>",
      'network/bridge@delay',
      'non-negative decimal integer',
    ],
    [
      "<network><name>x</name><bridge macTableManager='default'/></network>",
      'network/bridge@macTableManager',
      "'kernel' or 'libvirt'",
    ],
    ['<network><name>x</name><mtu/></network>', 'network/mtu@size', 'missing required attribute'],
    [
      "<network><name>x</name><ip address='10.0.0.1' family='ipv5'/></network>",
      'network/ip[0]@family',
      "'ipv4' or 'ipv6'",
    ],
    [
      "<network><name>x</name><ip address='10.0.0.1' netmask='255.0.0.0' prefix='8'/></network>",
      'network/ip[0]@prefix',
      'both a prefix and a netmask',
    ],
    [
      "<network><name>x</name><ip address='10.0.0.1' prefix='8'><dhcp><range start='10.0.0.2'/></dhcp></ip></network>",
      'network/ip[0]/dhcp/range[0]@end',
      'missing required attribute',
    ],
    [
      "<network><name>x</name><ip address='10.0.0.1' prefix='8'><dhcp><range start='10.0.0.2' end='10.0.0.3'><lease expiry='5' unit='days'/></range></dhcp></ip></network>",
      'network/ip[0]/dhcp/range[0]/lease@unit',
      "'seconds', 'minutes' or 'hours'",
    ],
    [
      "<network><name>x</name><ip family='ipv6' address='fd00::1' prefix='64'><tftp root='/x'/></ip></network>",
      'network/ip[0]/tftp',
      'only supported in an IPv4',
    ],
    [
      "<network><name>x</name><forward mode='route'><nat/></forward><ip address='10.0.0.1' prefix='8'/></network>",
      'network/forward/nat',
      "only be used when <forward> mode is 'nat'",
    ],
    [
      "<network><name>x</name><forward mode='nat' dev='a'><interface dev='b'/></forward><ip address='10.0.0.1' prefix='8'/></network>",
      'network/forward/interface[0]@dev',
      'must match',
    ],
    ["<network><name>x</name><forward mode='nat'/></network>", 'network/ip', 'no <ip> address given'],
    [
      "<network><name>x</name><forward mode='route'><interface dev='a'/><interface dev='b'/></forward><ip address='10.0.0.1' prefix='8'/></network>",
      'network/forward/interface[1]',
      'only one forwarding interface',
    ],
    [
      "<network><name>x</name><forward mode='open' dev='eth0'/><ip address='10.0.0.1' prefix='8'/></network>",
      'network/forward@dev',
      "not allowed with forward mode 'open'",
    ],
    [
      "<network><name>x</name><forward mode='bridge'/><bridge name='br0' stp='on'/></network>",
      'network/bridge',
      'only allowed in open, route, nat and isolated',
    ],
    [
      "<network><name>x</name><forward mode='bridge' dev='eth0'/><bridge name='br0'/></network>",
      'network/forward@dev',
      'not both',
    ],
    [
      "<network><name>x</name><forward mode='bridge'/><bridge name='br0'/><mtu size='1500'/></network>",
      'network/mtu@size',
      'not allowed',
    ],
    [
      "<network><name>x</name><dns><host ip='10.0.0.1'><hostname><b/></hostname></host></dns></network>",
      'network/dns/host[0]/hostname[0]',
      'text only',
    ],
    [
      "<network xmlns:d='http://libvirt.org/schemas/network/dnsmasq/1.0'><name>x</name><d:options><d:other/></d:options></network>",
      'network/dnsmasq:options/d:other',
      'unknown element',
    ],
  ])('%s → %s', (xml, path, reason) => {
    const ps = problems(xml);
    const hit = ps.find((p) => p.path === path);
    expect(hit, JSON.stringify(ps)).toBeDefined();
    expect(hit?.reason).toContain(reason);
  });

  it('rejects input larger than 1 MiB', () => {
    const big = net(`<description>${'a'.repeat(1024 * 1024)}</description>`);
    expect(problems(big)[0]?.reason).toContain('larger than');
  });

  it('collects every problem into one error', () => {
    const ps = problems(net("<mac address='zz'/><bridge name='a b'/><mtu size='10'/>"));
    expect(ps.map((p) => p.path).sort()).toEqual([
      'network/bridge@name',
      'network/mac@address',
      'network/mtu@size',
    ]);
  });

  it('decodes character references before validating (no smuggled newline)', () => {
    const ps = problems(net("<dns><txt name='a' value='x&#10;dhcp-script=/bin/sh'/></dns>"));
    expect(ps[0]).toMatchObject({ path: 'network/dns/txt[0]@value', value: 'x\ndhcp-script=/bin/sh' });
    expect(ps[0]?.reason).toContain('newline');
  });
});

describe('parseNetworkXml: characters XML forbids', () => {
  it.each(['&#27;', '&#0;', '&#x1b;', '&#xFFFE;', '\u0001', '\u001b'])('rejects %j', (c) => {
    const ps = problems(`<network><name>a${c}b</name></network>`);
    expect(ps[0]?.path).toBe('xml');
  });
  it('accepts tab/newline/CR references and reports them where they land', () => {
    const ps = problems('<network><name>a&#9;b</name></network>');
    expect(ps[0]).toMatchObject({ path: 'network/name', value: 'a\tb' });
  });
});

describe('virtnet extension: <virtnet:bridge enslave>', () => {
  const xml = (inner: string, fwd = "<forward mode='bridge'/>") =>
    `<network xmlns:v='https://virtnet.org/xmlns/network/1'><name>lan</name>${fwd}<bridge name='br0'/>${inner}</network>`;

  it('parses, validates and formats back', () => {
    const { network } = parseNetworkXml(xml("<v:bridge enslave='eth0'/>"));
    expect(network.bridge.enslave).toBe('eth0');
    const out = formatNetworkXml(network);
    expect(out).toContain("xmlns:virtnet='https://virtnet.org/xmlns/network/1'");
    expect(out).toContain("<virtnet:bridge enslave='eth0'/>");
    expect(parseNetworkXml(out).network.bridge.enslave).toBe('eth0');
  });

  it('names the field and value on bad input', () => {
    const msg = (x: string) => {
      try {
        parseNetworkXml(x);
        return 'parsed';
      } catch (e) {
        expect(e).toBeInstanceOf(ValidationError);
        return (e as Error).message;
      }
    };
    expect(msg(xml("<v:bridge enslave='eth 0'/>"))).toContain('network/virtnet:bridge@enslave');
    expect(msg(xml("<v:bridge enslave='eth0'/>", "<forward mode='nat'/>"))).toContain(
      "needs <forward mode='bridge'/>",
    );
    expect(msg(xml("<v:bridge enslave='br0'/>"))).toContain('cannot be the bridge itself');
    expect(msg(xml('<v:bridge/>'))).toContain('enslave');
    expect(msg(xml("<v:bridge enslave='eth0' x='1'/>"))).toContain('x');
  });
});
