import { describe, expect, it } from 'vitest';
import {
  parseEvpnMacVniJson,
  parseEvpnVniDetail,
  parseEvpnVniJson,
  renderEvpnBgpSnippet,
  routerId,
} from '../../src/frr/evpn.js';
import type { Span } from '../../src/model/span.js';

const span: Span = { mode: 'evpn', vni: 10100, gateway: '192.0.2.11', peers: ['192.0.2.12', '192.0.2.13'] };

describe('FRR EVPN snippet and vtysh output', () => {
  it('renders the host-level iBGP full mesh with advertise-all-vni', () => {
    expect(
      renderEvpnBgpSnippet(span, {
        role: 'member',
        local: '192.0.2.12',
        remotes: ['192.0.2.11', '192.0.2.13'],
      }),
    ).toBe(
      [
        '! virtnet span VNI 10100: BGP EVPN control plane of this host (192.0.2.12)',
        'router bgp 65000',
        ' bgp router-id 192.0.2.12',
        ' no bgp default ipv4-unicast',
        ' neighbor 192.0.2.11 remote-as 65000',
        ' neighbor 192.0.2.13 remote-as 65000',
        ' !',
        ' address-family l2vpn evpn',
        '  neighbor 192.0.2.11 activate',
        '  neighbor 192.0.2.13 activate',
        '  advertise-all-vni',
        ' exit-address-family',
        'exit',
        '',
      ].join('\n'),
    );
  });

  it('router id of an IPv6 underlay: its last 32 bits', () => {
    expect(routerId('2001:db8::c000:20b')).toBe('192.0.2.11');
    expect(routerId('192.0.2.1')).toBe('192.0.2.1');
  });

  it('parses show bgp l2vpn evpn vni json and show evpn vni VNI json (FRR 8.4 shapes)', () => {
    expect(
      parseEvpnVniJson(
        '{"advertiseGatewayMacip":"Disabled","advertiseAllVnis":"Enabled","numVnis":1,"10100":{"vni":10100,"type":"L2"}}',
      ),
    ).toEqual({ advertiseAllVni: true, vnis: [10100] });
    expect(parseEvpnVniJson('{"advertiseAllVnis":"Disabled","numVnis":0}').advertiseAllVni).toBe(false);
    expect(() => parseEvpnVniJson('{}')).toThrow();
    expect(() => parseEvpnVniJson('% Unknown command')).toThrow();
    expect(
      parseEvpnVniDetail(
        '{"vni":10100,"type":"L2","numMacs":2,"numRemoteVteps":1,"remoteVteps":["192.0.2.12"]}',
      ),
    ).toEqual({ remoteVteps: ['192.0.2.12'], macs: 2 });
    // FRR 8.4's `show evpn vni 10100 json`, as measured here (the list is under numRemoteVteps).
    expect(
      parseEvpnVniDetail(
        '{"vni":10100,"type":"L2","vrf":"default","vxlanInterface":"vx10100","ifindex":4,"sviInterface":"vsp0","vtepIp":"192.0.2.11","mcastGroup":"0.0.0.0","numMacs":0,"numArpNd":0,"numRemoteVteps":["192.0.2.12"]}',
      ),
    ).toEqual({ remoteVteps: ['192.0.2.12'], macs: 0 });
    expect(parseEvpnVniDetail('{}')).toBeUndefined();
  });
});

describe('parseEvpnMacVniJson', () => {
  it("reads zebra's remote MACs per VTEP (FRR 8.4's show evpn mac vni VNI json, as measured here)", () => {
    const text = `{
  "numMacs":3,
  "macs":{
    "52:54:00:aa:10:01":{"type":"remote","remoteVtep":"192.0.2.11","localSequence":0,"remoteSequence":0},
    "52:54:00:aa:10:02":{"type":"local","intf":"vnet0","localSequence":0,"remoteSequence":0},
    "52:54:00:AA:10:04":{"type":"remote","remoteVtep":"192.0.2.13"},
    "52:54:00:aa:10:03":{"type":"remote","remoteVtep":"192.0.2.13"}
  }
}`;
    expect(Object.fromEntries(parseEvpnMacVniJson(text))).toEqual({
      '192.0.2.11': ['52:54:00:aa:10:01'],
      '192.0.2.13': ['52:54:00:aa:10:03', '52:54:00:aa:10:04'],
    });
    expect(parseEvpnMacVniJson('{}').size).toBe(0);
    expect(() => parseEvpnMacVniJson('% Unknown command')).toThrow();
  });
});
