import { describe, expect, it } from 'vitest';
import { formatProblem, type Problem, ValidationError } from '../../src/errors.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { validateNetwork } from '../../src/model/validate-network.js';

function problems(xml: string): Problem[] {
  try {
    parseNetworkXml(xml);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).problems;
  }
  return [];
}

const U = '<uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>';
function net(inner: string, name = 'n'): string {
  return `<network><name>${name}</name>${U}${inner}</network>`;
}
function v4(dhcp: string, extra = ''): string {
  return net(`${extra}<ip address='192.168.122.1' netmask='255.255.255.0'><dhcp>${dhcp}</dhcp></ip>`);
}
function find(ps: Problem[], path: string): Problem {
  const p = ps.find((x) => x.path === path);
  expect(p, `no problem at ${path}: ${JSON.stringify(ps)}`).toBeDefined();
  return p!;
}

describe('validateNetwork', () => {
  it('returns [] for a valid network and is what parse uses', () => {
    const { network } = parseNetworkXml(v4("<range start='192.168.122.2' end='192.168.122.254'/>"));
    expect(validateNetwork(network)).toEqual([]);
    expect(validateNetwork({ ...network, name: 'a/b' })[0]?.path).toBe('network/name');
  });

  it('gives the path, value and reason in the documented shape', () => {
    const ps = problems(v4("<range start='10.0.0.5' end='192.168.122.254'/>"));
    expect(ps).toHaveLength(1);
    expect(formatProblem(ps[0]!)).toBe(
      'network/ip[0]/dhcp/range[0]@start: address 10.0.0.5 is outside the subnet 192.168.122.0/24 (value "10.0.0.5")',
    );
  });

  it('checks names, interface names, MACs and the bridge', () => {
    expect(find(problems(net('', 'a,b')), 'network/name').reason).toContain("','");
    expect(find(problems(net("<bridge name='virbr0;reboot'/>")), 'network/bridge@name').reason).toContain(
      'only letters',
    );
    expect(find(problems(net("<bridge name='virbr0123456789x'/>")), 'network/bridge@name').reason).toContain(
      '15 bytes',
    );
    expect(find(problems(net("<bridge name='br 0'/>")), 'network/bridge@name').reason).toContain(
      'whitespace',
    );
    expect(find(problems(net("<bridge name='x' zone='a b'/>")), 'network/bridge@zone').reason).toContain(
      'zone',
    );
    expect(find(problems(net("<bridge name='x' delay='70000'/>")), 'network/bridge@delay').reason).toContain(
      '0..65535',
    );
    expect(find(problems(net("<mac address='01:00:5e:00:00:01'/>")), 'network/mac@address').reason).toContain(
      'multicast',
    );
    const fwd = net("<forward mode='nat' dev='../eth0'/><ip address='10.0.0.1' prefix='8'/>");
    expect(find(problems(fwd), 'network/forward@dev').reason).toContain("'/'");
  });

  it('checks mtu ranges (IPv6 needs 1280)', () => {
    expect(find(problems(net("<mtu size='67'/>")), 'network/mtu@size').reason).toBe('mtu must be 68..65535');
    expect(problems(net("<mtu size='68'/>"))).toEqual([]);
    const v6 = net("<mtu size='1000'/><ip family='ipv6' address='fd00::1' prefix='64'/>");
    expect(find(problems(v6), 'network/mtu@size').reason).toContain('1280');
  });

  it('checks nat address and port ranges', () => {
    const base = (nat: string): string =>
      net(`<forward mode='nat'><nat>${nat}</nat></forward><ip address='10.0.0.1' prefix='8'/>`);
    expect(
      find(problems(base("<address start='1.2.3.9' end='1.2.3.1'/>")), 'network/forward/nat/address@end')
        .reason,
    ).toContain('before its start');
    expect(
      find(problems(base("<address start='fd00::1' end='fd00::2'/>")), 'network/forward/nat/address@start')
        .reason,
    ).toBe('expected an IPv4 address');
    expect(find(problems(base("<port start='0' end='10'/>")), 'network/forward/nat/port@start').reason).toBe(
      'port must be 1..65535',
    );
    expect(
      find(problems(base("<port start='10' end='70000'/>")), 'network/forward/nat/port@end').reason,
    ).toBe('port must be 1..65535');
    expect(
      find(problems(base("<port start='20' end='10'/>")), 'network/forward/nat/port@end').reason,
    ).toContain('before its start');
    expect(
      find(problems(base("<port start='x' end='10'/>")), 'network/forward/nat/port@start').reason,
    ).toContain('integer');
  });

  it('checks the domain', () => {
    expect(find(problems(net("<domain name='bad_domain!'/>")), 'network/domain@name').reason).toContain(
      'letters',
    );
    expect(
      find(problems(net("<domain name='ex.com' register='yes'/>")), 'network/domain@register').reason,
    ).toContain('localOnly');
  });

  it('checks DNS records', () => {
    const d = (x: string, attrs = ''): Problem[] => problems(net(`<dns${attrs}>${x}</dns>`));
    expect(find(d("<txt name='a' value='b'/>", " enable='no'"), 'network/dns').reason).toContain(
      "enable='no'",
    );
    expect(find(d('<forwarder/>'), 'network/dns/forwarder[0]').reason).toContain('addr or domain');
    expect(find(d("<forwarder addr='8.8.8'/>"), 'network/dns/forwarder[0]@addr').reason).toBe(
      'not an IP address',
    );
    expect(find(d("<forwarder domain='/evil/'/>"), 'network/dns/forwarder[0]@domain').reason).toContain(
      'letters',
    );
    expect(
      find(d("<forwarder domain='x.com' port='53'/>"), 'network/dns/forwarder[0]@port').reason,
    ).toContain('only allowed with addr');
    expect(find(d("<forwarder addr='1.1.1.1' port='0'/>"), 'network/dns/forwarder[0]@port').reason).toContain(
      '1..65535',
    );
    expect(find(d("<host ip='1.2.3.4'/>"), 'network/dns/host[0]/hostname').reason).toContain('at least one');
    expect(
      find(d("<host ip='1.2.3.4'><hostname>a b</hostname></host>"), 'network/dns/host[0]/hostname[0]').reason,
    ).toContain('letters');
    expect(find(d("<host ip='x'><hostname>a</hostname></host>"), 'network/dns/host[0]@ip').reason).toBe(
      'not an IP address',
    );
    expect(find(d("<srv service='a.b' protocol='tcp'/>"), 'network/dns/srv[0]@service').reason).toContain(
      'letters',
    );
    expect(
      find(d(`<srv service='${'a'.repeat(483)}' protocol='tcp'/>`), 'network/dns/srv[0]@service').reason,
    ).toContain('longer');
    // dnsmasq refuses an SRV name whose _service or _protocol label exceeds 63 bytes.
    expect(
      find(d(`<srv service='${'a'.repeat(63)}' protocol='tcp'/>`), 'network/dns/srv[0]@service').reason,
    ).toContain('DNS label');
    expect(
      find(d(`<srv service='a' protocol='${'t'.repeat(63)}'/>`), 'network/dns/srv[0]@protocol').reason,
    ).toContain('DNS label');
    expect(find(d("<srv service='a' protocol='t,cp'/>"), 'network/dns/srv[0]@protocol').reason).toContain(
      'letters',
    );
    expect(find(d("<srv service='a' protocol='tcp' port='1'/>"), 'network/dns/srv[0]@port').reason).toContain(
      'without a target',
    );
    expect(
      find(d("<srv service='a' protocol='tcp' target='t' port='0'/>"), 'network/dns/srv[0]@port').reason,
    ).toContain('1..65535');
    expect(
      find(d("<srv service='a' protocol='tcp' target='t' weight='65536'/>"), 'network/dns/srv[0]@weight')
        .reason,
    ).toContain('0..65535');
    expect(
      find(d("<srv service='a' protocol='tcp' target='x,y'/>"), 'network/dns/srv[0]@target').reason,
    ).toContain('letters');
    expect(
      d(
        "<srv service='a' protocol='tcp' target='.'/><srv service='b' protocol='udp' target='x.example.' port='1'/>",
      ),
    ).toEqual([]);
    expect(find(d("<srv protocol='tcp'/>"), 'network/dns/srv[0]@service').reason).toContain(
      'missing required',
    );
    expect(find(d("<txt name='a b' value='v'/>"), 'network/dns/txt[0]@name').reason).toContain('whitespace');
    expect(find(d("<txt name='a,b' value='v'/>"), 'network/dns/txt[0]@name').reason).toContain("','");
    expect(find(d("<txt name='a' value='v,server=1.2.3.4'/>"), 'network/dns/txt[0]@value').reason).toContain(
      "','",
    );
    expect(find(d("<txt name='a' value='v&#13;x'/>"), 'network/dns/txt[0]@value').reason).toContain(
      'carriage return',
    );
  });

  it('checks <ip> definitions', () => {
    expect(find(problems(net("<ip address='300.0.0.1' prefix='8'/>")), 'network/ip[0]@address').reason).toBe(
      'not an IP address',
    );
    expect(
      find(problems(net("<ip family='ipv6' address='10.0.0.1'/>")), 'network/ip[0]@address').reason,
    ).toContain("family 'ipv6'");
    expect(
      find(
        problems(net("<ip family='ipv6' address='fd00::1' netmask='255.0.0.0'/>")),
        'network/ip[0]@netmask',
      ).reason,
    ).toContain('not allowed');
    expect(
      find(problems(net("<ip address='10.0.0.1' netmask='255.0.255.0'/>")), 'network/ip[0]@netmask').reason,
    ).toContain('contiguous');
    expect(
      find(problems(net("<ip address='10.0.0.1' prefix='33'/>")), 'network/ip[0]@prefix').reason,
    ).toContain('1..32');
    expect(
      find(problems(net("<ip family='ipv6' address='fd00::1' prefix='129'/>")), 'network/ip[0]@prefix')
        .reason,
    ).toContain('1..128');
    const tftp = (root: string): Problem[] =>
      problems(net(`<ip address='10.0.0.1' prefix='8'><tftp root='${root}'/></ip>`));
    expect(find(tftp('srv/tftp'), 'network/ip[0]/tftp@root').reason).toContain('absolute');
    expect(find(tftp('/srv/../etc'), 'network/ip[0]/tftp@root').reason).toContain("'..'");
    expect(find(tftp('/srv,eth0'), 'network/ip[0]/tftp@root').reason).toContain("','");
  });

  it('checks DHCP ranges', () => {
    expect(
      find(
        problems(v4("<range start='192.168.122.9' end='192.168.122.2'/>")),
        'network/ip[0]/dhcp/range[0]@end',
      ).reason,
    ).toContain('before its start');
    expect(
      find(
        problems(v4("<range start='192.168.122.0' end='192.168.122.2'/>")),
        'network/ip[0]/dhcp/range[0]@start',
      ).reason,
    ).toContain('network address');
    expect(
      find(
        problems(v4("<range start='192.168.122.2' end='192.168.122.255'/>")),
        'network/ip[0]/dhcp/range[0]@end',
      ).reason,
    ).toContain('broadcast');
    expect(
      find(problems(v4("<range start='fd00::1' end='fd00::2'/>")), 'network/ip[0]/dhcp/range[0]@start')
        .reason,
    ).toBe('expected an IPv4 address');
    const overlap = v4(
      "<range start='192.168.122.2' end='192.168.122.50'/><range start='192.168.122.50' end='192.168.122.60'/>",
    );
    expect(find(problems(overlap), 'network/ip[0]/dhcp/range[1]@start').reason).toContain(
      'overlaps range[0]',
    );
    expect(
      find(
        problems(
          v4("<range start='192.168.122.2' end='192.168.122.9'><lease expiry='119' unit='seconds'/></range>"),
        ),
        'network/ip[0]/dhcp/range[0]/lease@expiry',
      ).reason,
    ).toContain('2 minutes');
    expect(
      find(
        problems(v4("<range start='192.168.122.2' end='192.168.122.9'><lease expiry='1'/></range>")),
        'network/ip[0]/dhcp/range[0]/lease@expiry',
      ).reason,
    ).toContain('2 minutes');
    expect(
      problems(v4("<range start='192.168.122.2' end='192.168.122.9'><lease expiry='2'/></range>")),
    ).toEqual([]);
  });

  it('checks DHCP hosts', () => {
    const h = (x: string): Problem[] => problems(v4(x));
    expect(
      find(h("<host mac='01:00:00:00:00:01' ip='192.168.122.5'/>"), 'network/ip[0]/dhcp/host[0]@mac').reason,
    ).toContain('multicast');
    expect(
      find(h("<host name='-bad' ip='192.168.122.5'/>"), 'network/ip[0]/dhcp/host[0]@name').reason,
    ).toContain('letters');
    expect(
      find(h("<host name='a,b' ip='192.168.122.5'/>"), 'network/ip[0]/dhcp/host[0]@name').reason,
    ).toContain('letters');
    expect(find(h("<host name='a' ip='10.0.0.5'/>"), 'network/ip[0]/dhcp/host[0]@ip').reason).toContain(
      'outside the subnet 192.168.122.0/24',
    );
    expect(find(h("<host name='a'/>"), 'network/ip[0]/dhcp/host[0]@ip').reason).toContain('missing IP');
    expect(find(h("<host ip='192.168.122.5'/>"), 'network/ip[0]/dhcp/host[0]').reason).toContain(
      'mac or name',
    );
    const dups = h(
      "<host mac='52:54:00:00:00:01' name='a' ip='192.168.122.5'/><host mac='52:54:00:00:00:01' name='A' ip='192.168.122.5'/>",
    );
    expect(find(dups, 'network/ip[0]/dhcp/host[1]@mac').reason).toBe('duplicate mac (also in host[0])');
    expect(find(dups, 'network/ip[0]/dhcp/host[1]@ip').reason).toBe('duplicate ip (also in host[0])');
    expect(find(dups, 'network/ip[0]/dhcp/host[1]@name').reason).toBe('duplicate name (also in host[0])');
    const v6 = (x: string): Problem[] =>
      problems(net(`<ip family='ipv6' address='fd00::1' prefix='64'><dhcp>${x}</dhcp></ip>`));
    expect(
      find(v6("<host mac='52:54:00:00:00:01' name='a' ip='fd00::5'/>"), 'network/ip[0]/dhcp/host[0]@mac')
        .reason,
    ).toContain('IPv6');
    expect(find(v6("<host id='0:1:zz' ip='fd00::5'/>"), 'network/ip[0]/dhcp/host[0]@id').reason).toContain(
      'hex',
    );
    expect(find(v6("<host ip='fd00::5'/>"), 'network/ip[0]/dhcp/host[0]').reason).toContain('id or name');
    expect(v6("<host id='0:1:0:1:aa' ip='fd00::5'/>")).toEqual([]);
  });

  it('checks bootp and the one-DHCP-per-family rule', () => {
    const b = (x: string): Problem[] =>
      problems(v4(`<range start='192.168.122.2' end='192.168.122.9'/>${x}`));
    expect(find(b("<bootp file='a,b'/>"), 'network/ip[0]/dhcp/bootp@file').reason).toContain("','");
    expect(find(b("<bootp file='a b'/>"), 'network/ip[0]/dhcp/bootp@file').reason).toContain('whitespace');
    expect(find(b("<bootp file=''/>"), 'network/ip[0]/dhcp/bootp@file').reason).toContain('empty');
    expect(find(b("<bootp file='x' server='fd00::1'/>"), 'network/ip[0]/dhcp/bootp@server').reason).toBe(
      'expected an IPv4 address',
    );
    const two = net(
      "<ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.0.2' end='10.0.0.3'/></dhcp></ip><ip address='10.0.1.1' prefix='24'><dhcp><range start='10.0.1.2' end='10.0.1.3'/></dhcp></ip>",
    );
    expect(find(problems(two), 'network/ip[1]/dhcp').reason).toContain('only one IPv4 <ip>');
  });

  it('checks routes', () => {
    const r = (x: string): Problem[] =>
      problems(
        net(`<ip address='192.168.1.1' prefix='24'/><ip family='ipv6' address='fd00::1' prefix='64'/>${x}`),
      );
    expect(r("<route address='10.1.0.0' prefix='16' gateway='192.168.1.9'/>")).toEqual([]);
    expect(
      find(r("<route address='10.1.0.0' prefix='16' gateway='192.168.2.9'/>"), 'network/route[0]@gateway')
        .reason,
    ).toContain('not inside');
    expect(
      find(r("<route address='10.1.0.1' prefix='16' gateway='192.168.1.9'/>"), 'network/route[0]@address')
        .reason,
    ).toContain('not the network address');
    expect(
      find(
        r("<route family='ipv6' address='fd01::' prefix='64' gateway='192.168.1.9'/>"),
        'network/route[0]@gateway',
      ).reason,
    ).toContain('IPv6');
    expect(
      find(
        r("<route address='10.1.0.0' netmask='255.0.255.0' gateway='192.168.1.9'/>"),
        'network/route[0]@netmask',
      ).reason,
    ).toContain('contiguous');
    expect(
      find(
        r("<route address='10.1.0.0' prefix='16' gateway='192.168.1.9' metric='0'/>"),
        'network/route[0]@metric',
      ).reason,
    ).toContain('1..');
    expect(r("<route family='ipv6' address='fd01::' prefix='64' gateway='fd00::9'/>")).toEqual([]);
  });

  it('rejects addressing elements in bridge mode', () => {
    const ps = problems(
      net(
        "<forward mode='bridge'/><bridge name='br0'/><mac address='52:54:00:00:00:01'/><domain name='x'/><ip address='10.0.0.1' prefix='8'/>",
      ),
    );
    for (const p of ['network/ip', 'network/mac', 'network/domain'])
      expect(find(ps, p).reason).toContain("forward mode 'bridge'");
  });

  it('checks title, description and dnsmasq options', () => {
    expect(find(problems(net('<title>a&#10;b</title>')), 'network/title').reason).toContain('one line');
    expect(problems(net('<description>a\nb</description>'))).toEqual([]);
    expect(
      find(problems(net('<description>a&#127;b</description>')), 'network/description').reason,
    ).toContain('control');
    const NS = " xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'";
    const o = (v: string): Problem[] =>
      problems(
        `<network${NS}><name>n</name>${U}<dnsmasq:options><dnsmasq:option value='${v}'/></dnsmasq:options></network>`,
      );
    expect(o('cname=a,b')).toEqual([]);
    expect(find(o('a&#10;dhcp-script=/tmp/x'), 'network/dnsmasq:options/option[0]@value').reason).toContain(
      'newline',
    );
    expect(find(o('  '), 'network/dnsmasq:options/option[0]@value').reason).toContain('empty');
  });
});
