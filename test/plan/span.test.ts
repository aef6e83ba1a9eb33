import { describe, expect, it } from 'vitest';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { spanRole } from '../../src/model/span.js';
import { planSpanDown, planSpanUp, renderFdbBatch, renderSpanIpBatch } from '../../src/plan/span.js';

const net = (mode: string, extra = '') =>
  parseNetworkXml(
    `<network xmlns:virtnet='https://virtnet.org/xmlns/network/1'><name>lab</name><bridge name='vsp0'/><virtnet:span mode='${mode}' vni='10100' gateway='192.0.2.11'${extra}><virtnet:peer address='192.0.2.12'/><virtnet:peer address='192.0.2.13'/></virtnet:span></network>`,
  ).network;

describe('span link plan', () => {
  it('vxlan: learning port on the bridge and one flood entry per remote host', () => {
    const n = net('vxlan');
    const plan = planSpanUp(n, spanRole(n, ['192.0.2.12']));
    expect(plan.port).toBe('vx10100');
    expect(renderSpanIpBatch(plan.ipOps)).toBe(
      [
        'link add vx10100 type vxlan id 10100 local 192.0.2.12 dstport 4789',
        'link set dev vx10100 addrgenmode none',
        'link set dev vx10100 master vsp0 up',
        '',
      ].join('\n'),
    );
    expect(renderFdbBatch(plan.fdbOps)).toBe(
      [
        'fdb append 00:00:00:00:00:00 dev vx10100 dst 192.0.2.11',
        'fdb append 00:00:00:00:00:00 dev vx10100 dst 192.0.2.13',
        '',
      ].join('\n'),
    );
    expect(renderSpanIpBatch(planSpanDown(plan.port))).toBe('link del dev vx10100\n');
  });

  it('evpn: no learning, no static flood list (the control plane fills the FDB); dstport kept', () => {
    const n = net('evpn', " dstport='8472'");
    const plan = planSpanUp(n, spanRole(n, ['192.0.2.11']));
    expect(plan.role.role).toBe('gateway');
    expect(renderSpanIpBatch(plan.ipOps)).toBe(
      [
        'link add vx10100 type vxlan id 10100 local 192.0.2.11 dstport 8472 nolearning',
        'link set dev vx10100 addrgenmode none',
        'link set dev vx10100 master vsp0 up',
        'link set dev vx10100 type bridge_slave learning off',
        '',
      ].join('\n'),
    );
    expect(plan.fdbOps).toEqual([]);
  });
});
