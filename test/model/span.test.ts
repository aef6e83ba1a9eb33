import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { formatNetworkXml } from '../../src/model/format-network.js';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { memberBridgeMac, spanHostNetwork, spanRole } from '../../src/model/span.js';

const NS = 'https://virtnet.org/xmlns/network/1';
const SPAN = `<v:span mode='vxlan' vni='10100' gateway='192.0.2.11'><v:peer address='192.0.2.12'/><v:peer address='192.0.2.13'/></v:span>`;

const xml = (span: string, fwd = "<forward mode='nat'/>") =>
  `<network xmlns:v='${NS}'><name>lab</name><uuid>6f3c1e2a-0000-4000-8000-0000000000aa</uuid>${fwd}<bridge name='vsp0' stp='off' delay='0'/><mac address='52:54:00:5a:00:01'/><domain name='lab'/><ip address='10.88.0.1' netmask='255.255.255.0'><dhcp><range start='10.88.0.100' end='10.88.0.200'/><host mac='52:54:00:aa:00:01' name='g1' ip='10.88.0.50'/></dhcp></ip>${span}</network>`;

function problems(x: string): string {
  try {
    parseNetworkXml(x);
    return 'parsed';
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as Error).message;
  }
}

describe('<virtnet:span>', () => {
  it('parses, formats back in virtnet prefix, and round-trips', () => {
    const { network } = parseNetworkXml(xml(SPAN));
    expect(network.span).toEqual({
      mode: 'vxlan',
      vni: 10100,
      gateway: '192.0.2.11',
      peers: ['192.0.2.12', '192.0.2.13'],
    });
    const out = formatNetworkXml(network);
    expect(out).toContain(`xmlns:virtnet='${NS}'`);
    expect(out).toContain(
      [
        "  <virtnet:span mode='vxlan' vni='10100' gateway='192.0.2.11'>",
        "    <virtnet:peer address='192.0.2.12'/>",
        "    <virtnet:peer address='192.0.2.13'/>",
        '  </virtnet:span>',
        '</network>',
      ].join('\n'),
    );
    expect(parseNetworkXml(out).network).toEqual(network);
  });

  it('keeps dstport and mode evpn; canonicalises IPv6 addresses', () => {
    const { network } = parseNetworkXml(
      xml(
        "<v:span mode='evpn' vni='7' dstport='8472' gateway='2001:DB8::0001'><v:peer address='2001:db8:0::2'/></v:span>",
      ),
    );
    expect(network.span).toEqual({
      mode: 'evpn',
      vni: 7,
      dstport: 8472,
      gateway: '2001:db8::1',
      peers: ['2001:db8::2'],
    });
    expect(formatNetworkXml(network)).toContain(
      "<virtnet:span mode='evpn' vni='7' gateway='2001:db8::1' dstport='8472'>",
    );
  });

  it('names the field and the value on bad input', () => {
    const bad = (attrs: string, peers = "<v:peer address='192.0.2.12'/>") =>
      problems(xml(`<v:span ${attrs}>${peers}</v:span>`));
    const ok = "vni='10100' gateway='192.0.2.11'";
    expect(bad(`mode='gre' ${ok}`)).toMatch(
      /network\/virtnet:span@mode.*"gre"|"gre".*network\/virtnet:span@mode/s,
    );
    expect(bad(`mode='gre' ${ok}`)).toContain("expected 'vxlan' or 'evpn'");
    expect(bad(ok)).toContain("missing required attribute 'mode'");
    expect(bad("mode='vxlan' vni='0' gateway='192.0.2.11'")).toContain('network/virtnet:span@vni');
    expect(bad("mode='vxlan' vni='16777216' gateway='192.0.2.11'")).toContain('1 to 16777215');
    expect(bad("mode='vxlan' vni='1x' gateway='192.0.2.11'")).toContain('"1x"');
    expect(bad(`mode='vxlan' ${ok} dstport='70000'`)).toContain('network/virtnet:span@dstport');
    expect(bad("mode='vxlan' vni='1' gateway='bogus'")).toContain('network/virtnet:span@gateway');
    expect(bad("mode='vxlan' vni='1' gateway='224.0.0.1'")).toContain('multicast');
    expect(bad("mode='vxlan' vni='1'")).toContain("missing required attribute 'gateway'");
    expect(bad(`mode='vxlan' ${ok}`, '')).toContain('at least one <virtnet:peer');
    expect(bad(`mode='vxlan' ${ok}`, "<v:peer address='192.0.2.11'/>")).toContain(
      'this is the gateway address',
    );
    expect(
      bad(`mode='vxlan' ${ok}`, "<v:peer address='192.0.2.12'/><v:peer address='192.0.2.12'/>"),
    ).toContain('network/virtnet:span/peer[1]@address');
    expect(bad(`mode='vxlan' ${ok}`, "<v:peer address='2001:db8::2'/>")).toContain(
      "gateway's address family",
    );
    expect(bad(`mode='vxlan' ${ok}`, '<v:peer/>')).toContain("missing required attribute 'address'");
    expect(bad(`mode='vxlan' ${ok}`, "<v:peer address='192.0.2.12' port='1'/>")).toContain(
      'network/virtnet:span/peer[0]@port',
    );
    expect(bad(`mode='vxlan' ${ok}`, "<v:host address='192.0.2.12'/>")).toContain('unknown element <v:host>');
    expect(problems(xml(SPAN + SPAN))).toContain('may appear only once');
    expect(
      problems(
        `<network xmlns:v='${NS}'><name>b</name><forward mode='bridge'/><bridge name='br0'/>${SPAN}</network>`,
      ),
    ).toContain("not forward mode 'bridge'");
  });
});

describe('span role and host network', () => {
  const { network } = parseNetworkXml(xml(SPAN));

  it('finds the role from which address is local', () => {
    expect(spanRole(network, ['127.0.0.1', '192.0.2.11', 'fe80::1'])).toEqual({
      role: 'gateway',
      local: '192.0.2.11',
      remotes: ['192.0.2.12', '192.0.2.13'],
    });
    expect(spanRole(network, ['192.0.2.13'])).toEqual({
      role: 'member',
      local: '192.0.2.13',
      remotes: ['192.0.2.11', '192.0.2.12'],
    });
    expect(() => spanRole(network, ['10.0.0.1'])).toThrow(
      "network lab: none of the span's addresses (gateway 192.0.2.11, peers 192.0.2.12, 192.0.2.13) is an address of this host",
    );
    expect(() => spanRole(network, ['192.0.2.11', '192.0.2.12'])).toThrow('more than one');
  });

  it('the gateway runs the network as defined; a member a bare bridge with its own MAC', () => {
    const gw = spanRole(network, ['192.0.2.11']);
    expect(spanHostNetwork(network, gw)).toBe(network);
    const m = spanRole(network, ['192.0.2.12']);
    const member = spanHostNetwork(network, m);
    expect(member.forward.mode).toBe('none');
    expect(member.ips).toEqual([]);
    expect(member.routes).toEqual([]);
    expect(member.dns).toBeUndefined();
    expect(member.domain).toBeUndefined();
    expect(member.bridge).toEqual(network.bridge);
    expect(member.span).toEqual(network.span);
    expect(member.mac).toBe(memberBridgeMac(network.span!, '192.0.2.12'));
    expect(member.mac).not.toBe(network.mac);
    expect(member.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    // Distinct per member, stable, and idempotent (adoption may apply it to a member's own state).
    expect(memberBridgeMac(network.span!, '192.0.2.13')).not.toBe(member.mac);
    expect(spanHostNetwork(member, m)).toEqual(member);
  });
});
