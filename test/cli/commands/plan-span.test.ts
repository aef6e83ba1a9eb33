import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { captureIo } from '../io.js';

const SPAN = `<network xmlns:virtnet='https://virtnet.org/xmlns/network/1'>
  <name>lab</name>
  <forward mode='nat'/>
  <bridge name='vsp0' stp='off' delay='0'/>
  <ip address='10.88.0.1' netmask='255.255.255.0'><dhcp><range start='10.88.0.100' end='10.88.0.200'/></dhcp></ip>
  <virtnet:span mode='vxlan' vni='10100' gateway='192.0.2.11'>
    <virtnet:peer address='192.0.2.12'/>
    <virtnet:peer address='192.0.2.13'/>
  </virtnet:span>
</network>`;

async function run(argv: string[], xml = SPAN) {
  const io = captureIo({ 's.xml': xml });
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

describe('virtnetctl validate / plan with <virtnet:span>', () => {
  it('validate names the span', async () => {
    const r = await run(['validate', 's.xml']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(
      "s.xml: valid network 'lab' (nat, spans 3 hosts: vxlan VNI 10100, gateway 192.0.2.11, members 192.0.2.12, 192.0.2.13)\n",
    );
    const bad = await run(['validate', 's.xml'], SPAN.replace("vni='10100'", "vni='0'"));
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(
      'network/virtnet:span@vni: expected a decimal integer from 1 to 16777215 (value "0")',
    );
  });

  it('plan: the gateway by default runs the network as defined plus the VXLAN port', async () => {
    const r = await run(['plan', 's.xml']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('dhcp-range=10.88.0.100,10.88.0.200,255.255.255.0\n');
    expect(r.out).toContain('role: gateway (this host is 192.0.2.11; runs the network as defined)\n');
    expect(r.out).toContain(
      '### span — bring up: ip -batch -\nlink add vx10100 type vxlan id 10100 local 192.0.2.11 dstport 4789\n',
    );
  });

  it('plan --span-host: a member has no dnsmasq, address or NAT; --json has the span', async () => {
    const r = await run(['plan', 's.xml', '--span-host', '192.0.2.13']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('(no dnsmasq for this network)');
    expect(r.out).not.toContain('10.88.0.1');
    expect(r.out).not.toMatch(/masquerade/);
    expect(r.out).toContain('fdb append 00:00:00:00:00:00 dev vx10100 dst 192.0.2.11\n');
    const j = JSON.parse((await run(['plan', 's.xml', '--json', '--span-host', '192.0.2.12'])).out);
    expect(j.span).toMatchObject({
      role: 'member',
      local: '192.0.2.12',
      remotes: ['192.0.2.11', '192.0.2.13'],
    });
    const other = await run(['plan', 's.xml', '--span-host', '192.0.2.99']);
    expect(other.code).not.toBe(0);
    expect(other.err).toContain("none of the span's addresses");
  });
});
