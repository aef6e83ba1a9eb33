import { describe, expect, it } from 'vitest';
import { ConflictError, ValidationError } from '../../../src/errors.js';
import { renderAddnhosts, renderHostsfile, withLiveHost } from '../../../src/plan/dnsmasq.js';
import { natNetwork, net, v4, v6 } from './fixtures.js';

function dual() {
  return net({
    ips: [
      v4('10.20.0.1', 24, {
        dhcp: {
          ranges: [{ start: '10.20.0.100', end: '10.20.0.199' }],
          hosts: [
            { mac: '52:54:00:aa:00:01', name: 'web', ip: '10.20.0.11' },
            { name: 'byname', ip: '10.20.0.12', lease: { expiry: 90, unit: 'minutes' } },
            { mac: '52:54:00:AA:00:03', ip: '10.20.0.13', lease: { expiry: 0, unit: 'hours' } },
            { mac: '52:54:00:aa:00:04', name: 'noip' },
          ],
        },
      }),
      v6('fd00:20::1', 64, {
        dhcp: {
          ranges: [],
          hosts: [
            { id: '0:3:0:1:52:54:0:aa:0:1', name: 'web', ip: 'fd00:20:0:0::11' },
            { name: 'six', ip: 'fd00:20::12', lease: { expiry: 3, unit: 'hours' } },
            { id: '0:4:aa', ip: 'fd00:20::13' },
          ],
        },
      }),
    ],
  });
}

describe('renderHostsfile', () => {
  it("IPv4 hosts then IPv6 hosts in libvirt's forms, leases appended, hosts without ip skipped", () => {
    expect(renderHostsfile(dual())).toBe(
      '52:54:00:aa:00:01,10.20.0.11,web\n' +
        'byname,10.20.0.12,90m\n' +
        '52:54:00:AA:00:03,10.20.0.13,infinite\n' +
        'id:0:3:0:1:52:54:0:aa:0:1,web,[fd00:20::11]\n' +
        'six,[fd00:20::12],3h\n' +
        'id:0:4:aa,[fd00:20::13]\n',
    );
  });

  it('only the address that serves DHCP contributes; empty when nothing is reserved', () => {
    expect(renderHostsfile(natNetwork())).toBe(
      '00:16:3e:77:e2:ed,192.168.122.10,a.example.com\n00:16:3e:3e:a9:1a,192.168.122.11,b.example.com\n',
    );
    expect(renderHostsfile(net({ ips: [v4('10.0.0.1', 24)] }))).toBe('');
  });

  it('live reservations follow the XML hosts of their family, in the order given', () => {
    const text = renderHostsfile(dual(), [
      { mac: '52:54:00:bb:00:02', ip: 'fd00:20::99', hostname: 'live6' },
      { mac: '52:54:00:BB:00:01', ip: '10.20.0.50' },
      { ip: '10.20.0.60', hostname: 'dnsonly' },
      { mac: '52:54:00:bb:00:03', ip: '10.20.0.51', hostname: 'live4' },
    ]);
    expect(text.split('\n')).toEqual([
      '52:54:00:aa:00:01,10.20.0.11,web',
      'byname,10.20.0.12,90m',
      '52:54:00:AA:00:03,10.20.0.13,infinite',
      '52:54:00:bb:00:01,10.20.0.50',
      '52:54:00:bb:00:03,10.20.0.51,live4',
      'id:0:3:0:1:52:54:0:aa:0:1,web,[fd00:20::11]',
      'six,[fd00:20::12],3h',
      'id:0:4:aa,[fd00:20::13]',
      '52:54:00:bb:00:02,[fd00:20::99],live6',
      '',
    ]);
  });

  it('validates live entries: every field ends up in the file', () => {
    const bad = [
      { mac: '52:54:00:bb:00:01' },
      { mac: '52:54:00:bb:00:01', ip: '10.0.0.1\nport=0' },
      { mac: '52:54:00:bb:00:01,set:x', ip: '10.0.0.1' },
      { mac: '01:00:5e:00:00:01', ip: '10.0.0.1' },
      { mac: '52:54:00:bb:00:01', ip: '10.0.0.1', hostname: 'a,b' },
      { mac: '52:54:00:bb:00:01', ip: '10.0.0.1', hostname: 'x\ndhcp-range=1' },
      { ip: '10.0.0.1' },
    ];
    for (const h of bad) {
      expect(() => renderHostsfile(net(), [h]), JSON.stringify(h)).toThrow(ValidationError);
      expect(() => renderAddnhosts(net(), [h]), JSON.stringify(h)).toThrow(ValidationError);
    }
  });

  it('a MAC + name without an address (a VM without metadata) is `mac,name` after the IPv4 hosts', () => {
    const text = renderHostsfile(dual(), [
      { mac: '52:54:00:BB:00:09', hostname: 'debian12' },
      { mac: '52:54:00:bb:00:0a', ip: 'fd00:20::9a', hostname: 'six2' },
    ]);
    expect(text.split('\n').slice(3, 5)).toEqual([
      '52:54:00:bb:00:09,debian12',
      'id:0:3:0:1:52:54:0:aa:0:1,web,[fd00:20::11]',
    ]);
    expect(renderAddnhosts(net(), [{ mac: '52:54:00:bb:00:09', hostname: 'debian12' }])).toBe('');
    expect(() => renderHostsfile(net(), [{ mac: '52:54:00:bb:00:09', hostname: 'my_vm' }])).toThrow(
      /extraHosts\[0\]\.hostname/,
    );
  });

  it("withLiveHost: the engine's check of one live entry, field-named; same MAC or address twice is a conflict", () => {
    const one = withLiveHost('n', [], { mac: '52:54:00:BB:00:09', hostname: 'vm' });
    expect(one).toEqual({
      entry: { mac: '52:54:00:bb:00:09', hostname: 'vm' },
      hosts: [{ mac: '52:54:00:bb:00:09', hostname: 'vm' }],
    });
    expect(() => withLiveHost('n', [], { mac: '52:54:00:bb:00:09', ip: '10.0.0.300' })).toThrow(
      /host\.ip: not an IP address \(value "10\.0\.0\.300"\)/,
    );
    expect(() => withLiveHost('n', [], { ip: '10.0.0.3' })).toThrow(ValidationError);
    expect(() => withLiveHost('n', one.hosts, { mac: '52:54:00:bb:00:09', ip: '10.0.0.3' })).toThrow(
      ConflictError,
    );
    const two = withLiveHost('n', one.hosts, { mac: '52:54:00:bb:00:0a', ip: '10.0.0.3' }).hosts;
    expect(() => withLiveHost('n', two, { ip: '10.0.0.3', hostname: 'x' })).toThrow(
      /10\.0\.0\.3 is already reserved/,
    );
  });

  it('refuses a host without the identifiers libvirt requires', () => {
    const n4 = net({ ips: [v4('10.0.0.1', 24, { dhcp: { ranges: [], hosts: [{ ip: '10.0.0.2' }] } })] });
    expect(() => renderHostsfile(n4)).toThrow(/host\[0\]/);
    const n6 = net({ ips: [v6('fd00::1', 64, { dhcp: { ranges: [], hosts: [{ ip: 'fd00::2' }] } })] });
    expect(() => renderHostsfile(n6)).toThrow(ValidationError);
  });
});

describe('renderAddnhosts', () => {
  it('one line per address (first appearance), names tab-terminated, live DNS names merged', () => {
    const n = net({
      dns: {
        enable: false,
        forwarders: [],
        txts: [],
        srvs: [],
        hosts: [
          { ip: '10.30.0.1', hostnames: ['gw', 'router'] },
          { ip: 'FD00:30::1', hostnames: ['gw6'] },
          { ip: '10.30.0.2', hostnames: ['nas'] },
          { ip: '10.30.0.1', hostnames: ['gateway'] },
          { ip: '10.30.0.3', hostnames: [] },
        ],
      },
    });
    expect(
      renderAddnhosts(n, [
        { ip: '10.30.0.2', hostname: 'files' },
        { mac: '52:54:00:00:00:09', ip: '10.30.0.9', hostname: 'leased' },
      ]),
    ).toBe('10.30.0.1\tgw\trouter\tgateway\t\nfd00:30::1\tgw6\t\n10.30.0.2\tnas\tfiles\t\n');
    expect(renderAddnhosts(net())).toBe('');
  });
});
