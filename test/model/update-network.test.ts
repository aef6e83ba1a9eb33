import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../src/errors.js';
import type { Network } from '../../src/model/network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { updateNetwork } from '../../src/model/update-network.js';

const XML = `<network><name>n</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <forward mode='nat' dev='eth0'/>
  <ip family='ipv6' address='fd00::1' prefix='64'/>
  <ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.0.100' end='10.0.0.200'/>
    <host mac='52:54:00:00:00:01' name='a' ip='10.0.0.10'/></dhcp></ip>
  <dns><txt name='t' value='v'/><host ip='10.0.0.5'><hostname>h</hostname></host>
    <srv service='s' protocol='tcp'/></dns>
</network>`;
const net = (): Network => parseNetworkXml(XML).network;

describe('updateNetwork: ip-dhcp-host', () => {
  it('adds to the <ip> with DHCP when parentIndex is -1, first or last, without changing the input', () => {
    const n = net();
    const u = updateNetwork(
      n,
      'ip-dhcp-host',
      'add-last',
      "<host mac='52:54:00:00:00:02' name='b' ip='10.0.0.11'/>",
    );
    expect(u.ips[1]?.dhcp?.hosts.map((h) => h.name)).toEqual(['a', 'b']);
    expect(n.ips[1]?.dhcp?.hosts).toHaveLength(1);
    const f = updateNetwork(
      n,
      'ip-dhcp-host',
      'add-first',
      "<host mac='52:54:00:00:00:02' name='b' ip='10.0.0.11'/>",
      1,
    );
    expect(f.ips[1]?.dhcp?.hosts.map((h) => h.name)).toEqual(['b', 'a']);
  });
  it('refuses duplicates, incomplete hosts, wrong families and invalid values', () => {
    const add =
      (x: string, i = -1) =>
      () =>
        updateNetwork(net(), 'ip-dhcp-host', 'add-last', x, i);
    expect(add("<host mac='52:54:00:00:00:01' name='z' ip='10.0.0.12'/>")).toThrow(ConflictError);
    expect(add("<host name='z'/>")).toThrow(ValidationError);
    expect(add("<host name='z'/>")).toThrow('network/ip[1]/dhcp/host@ip: missing IP address in static host');
    expect(add("<host mac='52:54:00:00:00:02' name='z' ip='fd00::5'/>")).toThrow(/family/);
    expect(add("<host name='z,evil' ip='10.0.0.12'/>")).toThrow(ValidationError);
    expect(add("<host name='z' ip='10.9.9.9'/>")).toThrow(/outside the subnet/);
    expect(add("<host name='z' ip='10.0.0.12'/>", 7)).toThrow(/no <ip> element at index 7/);
    expect(add("<range start='10.0.0.2' end='10.0.0.3'/>")).toThrow(/expecting <host>/);
    // DHCP on the IPv6 <ip> as well is fine; a second IPv4 <ip> with DHCP is not (libvirt).
    expect(
      updateNetwork(net(), 'ip-dhcp-host', 'add-last', "<host id='0:1:2' ip='fd00::5'/>", 0).ips[0]?.dhcp
        ?.hosts,
    ).toHaveLength(1);
  });
  it('modifies the host matching mac, ip or name; deletes the host matching all given fields', () => {
    const m = updateNetwork(
      net(),
      'ip-dhcp-host',
      'modify',
      "<host mac='52:54:00:00:00:01' name='a' ip='10.0.0.20'/>",
    );
    expect(m.ips[1]?.dhcp?.hosts).toEqual([{ mac: '52:54:00:00:00:01', name: 'a', ip: '10.0.0.20' }]);
    expect(() =>
      updateNetwork(
        net(),
        'ip-dhcp-host',
        'modify',
        "<host mac='52:54:00:00:00:09' name='q' ip='10.0.0.29'/>",
      ),
    ).toThrow(NotFoundError);
    const d = updateNetwork(net(), 'ip-dhcp-host', 'delete', "<host name='a'/>");
    expect(d.ips[1]?.dhcp?.hosts).toEqual([]);
    expect(() => updateNetwork(net(), 'ip-dhcp-host', 'delete', "<host name='a' ip='10.0.0.99'/>")).toThrow(
      NotFoundError,
    );
    expect(() => updateNetwork(net(), 'ip-dhcp-host', 'delete', '<host/>')).toThrow(ValidationError);
  });
});

describe('updateNetwork: other sections', () => {
  it('dhcp ranges: add, delete, no modify, no overlap', () => {
    const u = updateNetwork(
      net(),
      'ip-dhcp-range',
      'add-first',
      "<range start='10.0.0.20' end='10.0.0.30'/>",
      1,
    );
    expect(u.ips[1]?.dhcp?.ranges.map((r) => r.start)).toEqual(['10.0.0.20', '10.0.0.100']);
    expect(() =>
      updateNetwork(net(), 'ip-dhcp-range', 'add-last', "<range start='10.0.0.150' end='10.0.0.250'/>", 1),
    ).toThrow(/overlaps/);
    expect(() =>
      updateNetwork(net(), 'ip-dhcp-range', 'add-last', "<range start='10.0.0.100' end='10.0.0.200'/>", 1),
    ).toThrow(ConflictError);
    expect(
      updateNetwork(net(), 'ip-dhcp-range', 'delete', "<range start='10.0.0.100' end='10.0.0.200'/>", 1)
        .ips[1]?.dhcp?.ranges,
    ).toEqual([]);
    expect(() =>
      updateNetwork(net(), 'ip-dhcp-range', 'modify', "<range start='10.0.0.100' end='10.0.0.200'/>", 1),
    ).toThrow(/cannot be modified/);
  });
  it('forward interfaces keep dev as the first interface', () => {
    const u = updateNetwork(net(), 'forward-interface', 'add-first', "<interface dev='eth9'/>");
    expect(u.forward).toMatchObject({ dev: 'eth9', interfaces: ['eth9', 'eth0'] });
    const d = updateNetwork(net(), 'forward-interface', 'delete', "<interface dev='eth0'/>");
    expect(d.forward.dev).toBeUndefined();
    expect(d.forward.interfaces).toEqual([]);
    expect(() => updateNetwork(net(), 'forward-interface', 'add-last', "<interface dev='eth0'/>")).toThrow(
      ConflictError,
    );
    expect(() => updateNetwork(net(), 'forward-interface', 'add-last', "<interface dev='e;th'/>")).toThrow(
      ValidationError,
    );
  });
  it('dns host, txt and srv', () => {
    expect(
      updateNetwork(net(), 'dns-host', 'add-last', "<host ip='10.0.0.6'><hostname>g</hostname></host>").dns
        ?.hosts,
    ).toHaveLength(2);
    expect(() =>
      updateNetwork(net(), 'dns-host', 'add-last', "<host ip='10.0.0.5'><hostname>x</hostname></host>"),
    ).toThrow(ConflictError);
    expect(
      updateNetwork(net(), 'dns-host', 'delete', '<host><hostname>h</hostname></host>').dns?.hosts,
    ).toEqual([]);
    const mod = updateNetwork(
      net(),
      'dns-host',
      'modify',
      "<host ip='10.0.0.5'><hostname>k</hostname></host>",
    );
    expect(mod.dns?.hosts).toEqual([{ ip: '10.0.0.5', hostnames: ['k'] }]);
    expect(updateNetwork(net(), 'dns-txt', 'modify', "<txt name='t' value='w'/>").dns?.txts).toEqual([
      { name: 't', value: 'w' },
    ]);
    expect(() => updateNetwork(net(), 'dns-txt', 'modify', "<txt name='t' value='w&#10;x'/>")).toThrow(
      /newline/,
    );
    expect(() => updateNetwork(net(), 'dns-txt', 'modify', "<txt name='t'/>")).toThrow(/missing value/);
    expect(updateNetwork(net(), 'dns-srv', 'delete', "<srv protocol='tcp'/>").dns?.srvs).toEqual([]);
    expect(() => updateNetwork(net(), 'dns-srv', 'modify', "<srv service='s' protocol='tcp'/>")).toThrow(
      /cannot be modified/,
    );
  });
  it('refuses unsupported sections and unknown commands', () => {
    expect(() => updateNetwork(net(), 'portgroup', 'add-last', "<portgroup name='p'/>")).toThrow(
      /portgroups are not supported/,
    );
    expect(() => updateNetwork(net(), 'bridge', 'modify', "<bridge name='x'/>")).toThrow(/cannot be updated/);
    expect(() => updateNetwork(net(), 'nope' as never, 'modify', '<x/>')).toThrow(ValidationError);
    expect(() => updateNetwork(net(), 'dns-txt', 'nope' as never, '<x/>')).toThrow(ValidationError);
    expect(() => updateNetwork(net(), 'dns-txt', 'add-last', '<txt')).toThrow(ValidationError);
  });
});
