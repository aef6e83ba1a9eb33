import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.js';
import {
  libvirtDnsmasqPaths,
  libvirtHeader,
  needsDnsmasq,
  renderDnsmasqConf,
  virtnetHeader,
} from '../../../src/plan/dnsmasq.js';
import { natNetwork, net, paths, v4, v6 } from './fixtures.js';

/** The conf without its header, as lines. */
function body(text: string, header: string): string[] {
  expect(text.startsWith(header)).toBe(true);
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(header.length, -1).split('\n');
}

function render(n: Parameters<typeof renderDnsmasqConf>[0], p = paths): string[] {
  const h = virtnetHeader(n.name);
  return body(renderDnsmasqConf(n, p), h);
}

const HF = 'dhcp-hostsfile=/var/lib/libvirt/dnsmasq/default.hostsfile';
const AH = 'addn-hosts=/var/lib/libvirt/dnsmasq/default.addnhosts';

describe('renderDnsmasqConf', () => {
  it('NAT network: DHCP on the first IPv4 address, RA-only for IPv6 addresses without DHCP', () => {
    expect(render(natNetwork())).toEqual([
      'strict-order',
      'except-interface=lo',
      'bind-dynamic',
      'interface=virbr0',
      'dhcp-range=192.168.122.2,192.168.122.254,255.255.255.0',
      'dhcp-no-override',
      'dhcp-authoritative',
      'dhcp-lease-max=253',
      HF,
      AH,
      'dhcp-range=2001:db8:ac10:fe01::1,ra-only',
      'dhcp-range=2001:db8:ac10:fd01::1,ra-only',
    ]);
  });

  it("default header is virtnet's; libvirt's header is an option and carries the raw name", () => {
    const n = net({ name: 'lab"1"', ips: [v4('10.1.0.1', 16)] });
    const text = renderDnsmasqConf(n, paths);
    expect(text.startsWith(virtnetHeader('lab"1"'))).toBe(true);
    expect(
      text
        .split('\n')
        .filter((l) => l.startsWith('#'))
        .join('\n'),
    ).not.toContain('libvirt');
    const lv = renderDnsmasqConf(n, paths, { header: libvirtHeader('lab"1"') });
    expect(lv.split('\n').slice(0, 7)).toEqual([
      '##WARNING:  THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE',
      '##OVERWRITTEN AND LOST.  Changes to this configuration should be made using:',
      '##    virsh net-edit lab"1"',
      '## or other application using the libvirt API.',
      '##',
      '## dnsmasq conf file created by libvirt',
      'strict-order',
    ]);
    expect(renderDnsmasqConf(n, paths, { header: '' }).startsWith('strict-order\n')).toBe(true);
  });

  it('rejects a header that is not all comment lines', () => {
    expect(() => renderDnsmasqConf(net(), paths, { header: '# ok\nport=53\n' })).toThrow(ValidationError);
    expect(() => renderDnsmasqConf(net(), paths, { header: '# no newline' })).toThrow(ValidationError);
  });

  it('isolated network: no default route, no resolv.conf, RA router lifetime 0', () => {
    const n = net({
      forward: { mode: 'none', interfaces: [] },
      bridge: { name: 'virbr7' },
      ips: [
        v4('10.9.8.1', 24, { dhcp: { ranges: [{ start: '10.9.8.100', end: '10.9.8.109' }], hosts: [] } }),
      ],
    });
    expect(render(n)).toEqual([
      'strict-order',
      'except-interface=lo',
      'bind-dynamic',
      'interface=virbr7',
      'dhcp-option=3',
      'no-resolv',
      'ra-param=*,0,0',
      'dhcp-range=10.9.8.100,10.9.8.109,255.255.255.0',
      'dhcp-no-override',
      'dhcp-authoritative',
      'dhcp-lease-max=10',
      HF,
      AH,
    ]);
  });

  it('DNS disabled: port=0, no addn-hosts, no DNS records, no PTR', () => {
    const n = net({
      forward: { mode: 'route', interfaces: [] },
      dns: {
        enable: false,
        forwardPlainNames: false,
        forwarders: [{ addr: '9.9.9.9' }],
        txts: [{ name: 't', value: 'v' }],
        hosts: [],
        srvs: [{ service: 's', protocol: 'tcp' }],
      },
      ips: [v4('10.2.0.1', 24, { localPtr: true })],
    });
    expect(render(n)).toEqual([
      'strict-order',
      'port=0',
      'except-interface=lo',
      'bind-dynamic',
      'interface=virbr0',
    ]);
  });

  it('forwarders: server= lines in order, no-resolv only for an address without domain', () => {
    const dns = (forwarders: { addr?: string; domain?: string; port?: number }[]) => ({
      forwarders,
      txts: [],
      hosts: [],
      srvs: [],
    });
    const a = net({ dns: dns([{ domain: 'corp.test', addr: '10.0.0.53' }, { domain: 'local.test' }]) });
    expect(render(a).slice(0, 4)).toEqual([
      'strict-order',
      'server=/corp.test/10.0.0.53',
      'server=/local.test/#',
      'except-interface=lo',
    ]);
    const b = net({ dns: dns([{ addr: '2001:DB8:0:0::53' }, { addr: '1.1.1.1', port: 5353 }]) });
    expect(render(b).slice(0, 5)).toEqual([
      'strict-order',
      'server=2001:db8::53',
      'server=1.1.1.1#5353',
      'no-resolv',
      'except-interface=lo',
    ]);
  });

  it('domain (localOnly), PTR zones for localPtr addresses, forwardPlainNames=no', () => {
    const n = net({
      domain: { name: 'lab.test', localOnly: true },
      dns: { forwardPlainNames: false, forwarders: [], txts: [], hosts: [], srvs: [] },
      ips: [
        v4('172.20.5.1', 16, { localPtr: true }),
        v4('10.3.3.1', 24, { localPtr: false }),
        v6('fd00:1:2:3::1', 48, { localPtr: true }),
        v6('fd00:9::1', 64),
      ],
    });
    expect(render(n)).toEqual([
      'strict-order',
      'local=/lab.test/',
      'domain=lab.test',
      'expand-hosts',
      'local=/20.172.in-addr.arpa/',
      'local=/2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa/',
      'domain-needed',
      'local=//',
      'except-interface=lo',
      'bind-dynamic',
      'interface=virbr0',
      AH,
      'dhcp-range=fd00:1:2:3::1,ra-only',
      'dhcp-range=fd00:9::1,ra-only',
    ]);
  });

  it('localPtr with a prefix that is not whole octets/nibbles is refused like libvirt', () => {
    const n = net({ ips: [v4('10.4.0.1', 20, { localPtr: true })] });
    expect(() => renderDnsmasqConf(n, paths)).toThrow(/network\/ip\[0\]@localPtr/);
    const m = net({ ips: [v6('fd00::1', 62, { localPtr: true })] });
    expect(() => renderDnsmasqConf(m, paths)).toThrow(ValidationError);
  });

  it('TXT and SRV records: positional port/priority/weight with defaults, bare SRV without target', () => {
    const n = net({
      dns: {
        forwarders: [],
        txts: [{ name: 'info', value: 'hello world' }],
        hosts: [],
        srvs: [
          {
            service: 'ldap',
            protocol: 'tcp',
            domain: 'lab.test',
            target: 'dc.lab.test',
            port: 389,
            priority: 1,
            weight: 5,
          },
          { service: 'sip', protocol: 'udp', target: 'pbx.lab.test', weight: 7 },
          { service: 'xmpp', protocol: 'tcp', target: 'chat.lab.test', priority: 3 },
          { service: 'http', protocol: 'tcp', target: 'web.lab.test', port: 8080 },
          { service: 'none', protocol: 'tcp', target: '.', port: 1, priority: 2, weight: 3 },
          { service: 'bare', protocol: 'udp', domain: 'x.test' },
          { service: 'plain', protocol: 'tcp', target: 'p.lab.test' },
        ],
      },
    });
    expect(render(n).slice(4, 12)).toEqual([
      'txt-record=info,hello world',
      'srv-host=_ldap._tcp.lab.test,dc.lab.test,389,1,5',
      'srv-host=_sip._udp,pbx.lab.test,1,0,7',
      'srv-host=_xmpp._tcp,chat.lab.test,1,3',
      'srv-host=_http._tcp,web.lab.test,8080',
      'srv-host=_none._tcp',
      'srv-host=_bare._udp.x.test',
      'srv-host=_plain._tcp,p.lab.test',
    ]);
  });

  it('DHCPv6 with range and hosts: prefix in the range, enable-ra, lease-max adds both families', () => {
    const n = net({
      domain: { name: 'six' },
      ips: [
        v4('10.5.0.1', 24, {
          dhcp: {
            ranges: [{ start: '10.5.0.10', end: '10.5.0.19', lease: { expiry: 2, unit: 'hours' } }],
            hosts: [],
          },
        }),
        v6('fd00:5::1', 64, {
          dhcp: {
            ranges: [{ start: 'fd00:5::100', end: 'fd00:5::1ff', lease: { expiry: 0, unit: 'minutes' } }],
            hosts: [{ name: 'h6', ip: 'fd00:5::20' }],
          },
        }),
        v6('fd00:6::1', 64),
      ],
    });
    expect(render(n)).toEqual([
      'strict-order',
      'domain=six',
      'expand-hosts',
      'except-interface=lo',
      'bind-dynamic',
      'interface=virbr0',
      'dhcp-range=10.5.0.10,10.5.0.19,255.255.255.0,2h',
      'dhcp-no-override',
      'dhcp-authoritative',
      'dhcp-range=fd00:5::100,fd00:5::1ff,64,infinite',
      'dhcp-lease-max=266',
      HF,
      AH,
      'enable-ra',
    ]);
  });

  it('hosts without ranges: a static range per family, no lease-max', () => {
    const n = net({
      forward: { mode: 'route', interfaces: [] },
      ips: [
        v4('10.6.0.1', 24, { dhcp: { ranges: [], hosts: [{ mac: '52:54:00:00:00:01', ip: '10.6.0.5' }] } }),
        v6('fd00:6::1', 64, { dhcp: { ranges: [], hosts: [{ id: '0:1:2', ip: 'fd00:6::5' }] } }),
      ],
    });
    expect(render(n).slice(4)).toEqual([
      'dhcp-range=10.6.0.1,static',
      'dhcp-no-override',
      'dhcp-authoritative',
      'dhcp-range=fd00:6::1,static,64',
      HF,
      AH,
      'enable-ra',
    ]);
  });

  it('lease units: seconds, minutes, hours, infinite', () => {
    const lines = (['seconds', 'minutes', 'hours'] as const).map((unit) => {
      const n = net({
        ips: [
          v4('10.7.0.1', 24, {
            dhcp: {
              ranges: [{ start: '10.7.0.2', end: '10.7.0.3', lease: { expiry: 45, unit } }],
              hosts: [],
            },
          }),
        ],
      });
      return render(n)[4];
    });
    expect(lines).toEqual([
      'dhcp-range=10.7.0.2,10.7.0.3,255.255.255.0,45s',
      'dhcp-range=10.7.0.2,10.7.0.3,255.255.255.0,45m',
      'dhcp-range=10.7.0.2,10.7.0.3,255.255.255.0,45h',
    ]);
  });

  it('TFTP on every IPv4 address with <tftp>, before DHCP; bootp with and without server', () => {
    const n = net({
      ips: [
        v4('10.8.0.1', 24, {
          tftpRoot: '/srv/tftp',
          dhcp: {
            ranges: [{ start: '10.8.0.2', end: '10.8.0.3' }],
            hosts: [],
            bootp: { file: 'undionly.kpxe', server: '10.8.0.9' },
          },
        }),
        v4('10.9.0.1', 24, { tftpRoot: '/srv/tftp2' }),
      ],
    });
    expect(render(n).slice(4, 12)).toEqual([
      'enable-tftp',
      'tftp-root=/srv/tftp',
      'tftp-root=/srv/tftp2',
      'dhcp-range=10.8.0.2,10.8.0.3,255.255.255.0',
      'dhcp-no-override',
      'dhcp-authoritative',
      'dhcp-boot=undionly.kpxe,,10.8.0.9',
      'dhcp-lease-max=2',
    ]);
    const m = net({
      ips: [
        v4('10.8.0.1', 24, {
          dhcp: { ranges: [{ start: '10.8.0.2', end: '10.8.0.3' }], hosts: [], bootp: { file: 'pxe.0' } },
        }),
      ],
    });
    expect(render(m)).toContain('dhcp-boot=pxe.0');
  });

  it('no DHCP and no IPv6: only addn-hosts; MTU option; dnsmasq:options verbatim at the end', () => {
    const n = net({
      mtu: 9000,
      ips: [v4('10.10.0.1', 24)],
      dnsmasqOptions: ['log-queries', 'cname=alias.test,target.test'],
    });
    expect(render(n)).toEqual([
      'strict-order',
      'except-interface=lo',
      'bind-dynamic',
      'interface=virbr0',
      AH,
      'dhcp-option=option:mtu,9000',
      'log-queries',
      'cname=alias.test,target.test',
    ]);
  });

  it("pid-file only when asked, at libvirt's position", () => {
    const lines = render(net({ ips: [v4('10.11.0.1', 24)] }), {
      ...paths,
      pidFile: '/run/libvirt/network/default.pid',
    });
    expect(lines.slice(0, 3)).toEqual([
      'strict-order',
      'pid-file=/run/libvirt/network/default.pid',
      'except-interface=lo',
    ]);
  });

  it('addresses are written as inet_ntop does (IPv6 compressed and lowercased, v4-mapped)', () => {
    const n = net({
      dns: {
        forwarders: [{ addr: '::FFFF:192.0.2.1' }, { addr: '2001:0DB8:0000:0000:0001:0000:0000:0001' }],
        txts: [],
        hosts: [],
        srvs: [],
      },
      ips: [v6('FD00:0:0:0:0:0:0:1', 64)],
    });
    const lines = render(n);
    expect(lines).toContain('server=::ffff:192.0.2.1');
    expect(lines).toContain('server=2001:db8::1:0:0:1');
    expect(lines).toContain('dhcp-range=fd00::1,ra-only');
  });

  it('refuses what libvirt refuses at start: two DHCP definitions of a family, bad ranges', () => {
    const dhcp = (s: string, e: string) => ({ ranges: [{ start: s, end: e }], hosts: [] });
    const two = net({
      ips: [
        v4('10.1.0.1', 24, { dhcp: dhcp('10.1.0.2', '10.1.0.3') }),
        v4('10.2.0.1', 24, { dhcp: dhcp('10.2.0.2', '10.2.0.3') }),
      ],
    });
    expect(() => renderDnsmasqConf(two, paths)).toThrow(/multiple IPv4 DHCP/);
    const cases: [string, string, number, RegExp][] = [
      ['10.1.0.0', '10.1.0.9', 24, /network address/],
      ['10.1.0.2', '10.1.0.255', 24, /broadcast/],
      ['10.1.0.9', '10.1.0.2', 24, /larger than its end/],
      ['10.1.0.2', '10.2.0.9', 8, /too large/],
      ['10.1.0.2', '10.1.1.9', 24, /not entirely within/],
    ];
    for (const [s, e, prefix, re] of cases) {
      expect(() =>
        renderDnsmasqConf(net({ ips: [v4('10.1.0.1', prefix, { dhcp: dhcp(s, e) })] }), paths),
      ).toThrow(re);
    }
    // IPv4 ranges may span the last two octets: the count crosses the octet boundary.
    const wide = net({ ips: [v4('10.1.0.1', 16, { dhcp: dhcp('10.1.0.10', '10.1.2.9') })] });
    expect(render(wide)).toContain('dhcp-lease-max=512');
    const v6short = net({ ips: [v6('fd00::1', 56, { dhcp: dhcp('fd00::10', 'fd00::20') })] });
    expect(() => renderDnsmasqConf(v6short, paths)).toThrow(/ip\[0\]@prefix.*64 or longer/);
    const v6wide = net({ ips: [v6('fd00::1', 64, { dhcp: dhcp('fd00::1:0', 'fd00::2:0') })] });
    expect(() => renderDnsmasqConf(v6wide, paths)).toThrow(/too large/);
  });

  it('refuses unsafe paths, a missing bridge name and dnsmasq older than 2.67', () => {
    const n = net({ ips: [v4('10.1.0.1', 24)] });
    for (const bad of ['relative/x', '/a\nb', '/a,b', '/a b', '/a#b', '/a"b']) {
      expect(() => renderDnsmasqConf(n, { ...paths, addnhosts: bad })).toThrow(ValidationError);
    }
    expect(() => renderDnsmasqConf(net({ bridge: {} }), paths)).toThrow(/bridge@name/);
    expect(() => renderDnsmasqConf(n, paths, { dnsmasqVersion: '2.66' })).toThrow(/2\.67/);
    expect(() => renderDnsmasqConf(n, paths, { dnsmasqVersion: 'x' })).toThrow(ValidationError);
    expect(renderDnsmasqConf(n, paths, { dnsmasqVersion: 'Dnsmasq version 2.67' })).toBe(
      renderDnsmasqConf(n, paths),
    );
  });
});

describe('libvirtDnsmasqPaths', () => {
  it('XML-escapes the name like libvirt', () => {
    expect(libvirtDnsmasqPaths('/var/lib/libvirt/dnsmasq', `a"b'c<d>&e`)).toEqual({
      hostsfile: '/var/lib/libvirt/dnsmasq/a&quot;b&apos;c&lt;d&gt;&amp;e.hostsfile',
      addnhosts: '/var/lib/libvirt/dnsmasq/a&quot;b&apos;c&lt;d&gt;&amp;e.addnhosts',
    });
  });
});

describe('needsDnsmasq', () => {
  it('follows libvirt: not for bridge mode, not without addresses, not without DHCP and DNS', () => {
    expect(needsDnsmasq(natNetwork())).toBe(true);
    expect(needsDnsmasq(net())).toBe(false);
    expect(
      needsDnsmasq(net({ forward: { mode: 'bridge', interfaces: [] }, ips: [v4('10.0.0.1', 24)] })),
    ).toBe(false);
    const noDns = { enable: false, forwarders: [], txts: [], hosts: [], srvs: [] };
    expect(needsDnsmasq(net({ dns: noDns, ips: [v4('10.0.0.1', 24)] }))).toBe(false);
    expect(needsDnsmasq(net({ ips: [v4('10.0.0.1', 24)] }))).toBe(true);
    expect(needsDnsmasq(net({ dns: noDns, ips: [v4('10.0.0.1', 24, { tftpRoot: '/srv/tftp' })] }))).toBe(
      true,
    );
    expect(
      needsDnsmasq(
        net({
          dns: noDns,
          ips: [
            v4('10.0.0.1', 24, { dhcp: { ranges: [{ start: '10.0.0.2', end: '10.0.0.3' }], hosts: [] } }),
          ],
        }),
      ),
    ).toBe(true);
  });
});
