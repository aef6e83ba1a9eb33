import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { findConflicts, planPorts } from '../../src/hooks/plan-ports.js';
import type { DomainRecord } from '../../src/hooks/records.js';
import { parseDomainXml } from '../../src/model/domain.js';
import { domainXml, meta, virtnetNetwork } from './fakes.js';

const nets = [virtnetNetwork('lab', 'vbr-lab', 77, "<host mac='52:54:00:00:00:99' ip='10.77.0.99'/>")];
const U = '00000000-0000-4000-8000-000000000001';
const MAC = '52:54:00:aa:bb:01';

function plan(xml: string) {
  return planPorts(parseDomainXml(xml), nets);
}

describe('planPorts', () => {
  it("type='bridge' on a virtnet bridge: reservation by MAC + domain name", () => {
    const ports = plan(domainXml({ name: 'web', uuid: U, mac: MAC, bridge: 'vbr-lab', tap: 'vnet3' }));
    expect(ports).toEqual([
      {
        index: 0,
        kind: 'bridge',
        network: 'lab',
        mac: MAC,
        ifname: 'vnet3',
        bridge: 'vbr-lab',
        hostname: 'web',
        forwards: [],
      },
    ]);
  });

  it("type='bridge' on another bridge is not virtnet's", () => {
    expect(plan(domainXml({ name: 'web', uuid: U, mac: MAC, bridge: 'br0' }))).toEqual([]);
  });

  it('metadata: fixed IP, DNS name and forwards', () => {
    const m = meta(
      `<virtnet:interface mac='${MAC}' ip='10.77.0.50' ip6='fd00:77::50' name='www'><virtnet:forward proto='tcp' host-port='8080' guest-port='80'/></virtnet:interface>`,
    );
    const [p] = plan(domainXml({ name: 'web', uuid: U, mac: MAC, bridge: 'vbr-lab', metadata: m }));
    expect(p).toMatchObject({ ip: '10.77.0.50', ip6: 'fd00:77::50', hostname: 'www' });
    expect(p!.forwards).toEqual([
      { proto: 'tcp', hostPort: 8080, guestPort: 80, families: ['ipv4', 'ipv6'] },
    ]);
  });

  it("type='ethernet' assigned by metadata to a virtnet network", () => {
    const m = meta(`<virtnet:interface index='0' network='lab'/>`);
    const ports = plan(
      domainXml({ name: 'e', uuid: U, mac: MAC, type: 'ethernet', tap: 'tap7', metadata: m }),
    );
    expect(ports[0]).toMatchObject({ kind: 'ethernet', network: 'lab', ifname: 'tap7' });
  });

  it("type='network' naming a virtnet network (published in libvirt): virtnet's, as type='bridge'", () => {
    const m = meta(`<virtnet:interface mac='${MAC}' ip='10.77.0.50'/>`);
    const [p] = plan(
      domainXml({ name: 'g', uuid: U, mac: MAC, type: 'network', network: 'lab', metadata: m }),
    );
    expect(p).toMatchObject({
      kind: 'bridge',
      network: 'lab',
      bridge: 'vbr-lab',
      ip: '10.77.0.50',
      hostname: 'g',
    });
    expect(plan(domainXml({ name: 'g', uuid: U, mac: MAC, type: 'network', network: 'lab' }))).toEqual([
      { index: 0, kind: 'bridge', network: 'lab', mac: MAC, bridge: 'vbr-lab', hostname: 'g', forwards: [] },
    ]);
    expect(() =>
      plan(
        domainXml({
          name: 'g',
          uuid: U,
          mac: MAC,
          type: 'network',
          network: 'lab',
          metadata: meta(`<virtnet:interface mac='${MAC}' ip='10.9.0.5'/>`),
        }),
      ),
    ).toThrow(/virtnet:interface\[mac=52:54:00:aa:bb:01\]@ip: not inside network 'lab'/);
  });

  it("type='network' (libvirt's): only the forwards, no DNS name", () => {
    const m = meta(
      `<virtnet:interface mac='${MAC}' ip='192.168.122.50'><virtnet:forward proto='udp' host-port='5353'/></virtnet:interface>`,
    );
    const [p] = plan(
      domainXml({ name: 'g', uuid: U, mac: MAC, type: 'network', network: 'default', metadata: m }),
    );
    expect(p).toMatchObject({ kind: 'network', network: 'default', ip: '192.168.122.50' });
    expect(p!.hostname).toBeUndefined();
  });

  it.each([
    [meta(`<virtnet:interface mac='${MAC}' ip='10.78.0.5'/>`), 'bridge', /not inside network 'lab'/],
    [meta(`<virtnet:interface mac='${MAC}' ip='10.77.0.1'/>`), 'bridge', /address of network 'lab' itself/],
    [meta(`<virtnet:interface mac='${MAC}' ip='10.77.0.255'/>`), 'bridge', /broadcast/],
    [meta(`<virtnet:interface mac='${MAC}' network='other'/>`), 'bridge', /is on bridge 'vbr-lab'/],
    [meta(`<virtnet:interface mac='${MAC}' network='nope'/>`), 'ethernet', /no virtnet network of this name/],
    [meta(`<virtnet:interface mac='${MAC}'/>`), 'ethernet', /needs network=/],
  ])('bad metadata %#', (m, type, re) => {
    const xml = domainXml({
      name: 'w',
      uuid: U,
      mac: MAC,
      bridge: 'vbr-lab',
      type: type as 'bridge',
      metadata: m,
    });
    expect(() => plan(xml)).toThrow(ValidationError);
    expect(() => plan(xml)).toThrow(re);
  });

  it('metadata for an interface not on a virtnet network is an error', () => {
    const m = meta(`<virtnet:interface mac='${MAC}' ip='10.77.0.5'/>`);
    expect(() => plan(domainXml({ name: 'w', uuid: U, mac: MAC, bridge: 'br0', metadata: m }))).toThrow(
      /not on a virtnet network/,
    );
  });
});

describe('findConflicts', () => {
  const other = (ports: DomainRecord['ports']): DomainRecord => ({
    version: 1,
    domain: 'other',
    uuid: '00000000-0000-4000-8000-000000000002',
    phase: 'started',
    ports,
    updatedAt: new Date().toISOString(),
  });
  const mine = (ip?: string, port?: number) => {
    const fw = port ? `<virtnet:forward proto='tcp' host-port='${port}'/>` : '';
    const m = meta(`<virtnet:interface mac='${MAC}'${ip ? ` ip='${ip}'` : ''}>${fw}</virtnet:interface>`);
    return plan(domainXml({ name: 'web', uuid: U, mac: MAC, bridge: 'vbr-lab', metadata: m }));
  };
  const state = (records: DomainRecord[], extra: { mac: string; ip: string }[] = []) => ({
    networks: nets,
    records,
    extraHosts: () => extra,
  });

  it('no conflict', () => {
    expect(findConflicts({ name: 'web', uuid: U }, mine('10.77.0.5', 8080), state([]))).toEqual([]);
  });
  it("IP of the network's own DHCP host", () => {
    expect(findConflicts({ name: 'web', uuid: U }, mine('10.77.0.99'), state([]))[0]?.reason).toMatch(
      /DHCP host 52:54:00:00:00:99/,
    );
  });
  it('IP held by another domain', () => {
    const r = other([
      { index: 0, kind: 'bridge', network: 'lab', mac: '52:54:00:00:00:02', ip: '10.77.0.5', forwards: [] },
    ]);
    expect(findConflicts({ name: 'web', uuid: U }, mine('10.77.0.5'), state([r]))[0]?.reason).toMatch(
      /taken on network 'lab' by domain 'other'/,
    );
  });
  it('IP of a live host entry of another MAC', () => {
    const p = findConflicts(
      { name: 'web', uuid: U },
      mine('10.77.0.6'),
      state([], [{ mac: '52:54:00:00:00:07', ip: '10.77.0.6' }]),
    );
    expect(p[0]?.reason).toMatch(/host entry 52:54:00:00:00:07/);
  });
  it('host port held by another domain (any network)', () => {
    const r = other([
      {
        index: 0,
        kind: 'network',
        network: 'default',
        mac: '52:54:00:00:00:02',
        ip: '192.168.122.9',
        forwards: [{ proto: 'tcp', hostPort: 8080, guestPort: 80, families: ['ipv4'] }],
      },
    ]);
    expect(findConflicts({ name: 'web', uuid: U }, mine('10.77.0.5', 8080), state([r]))[0]?.reason).toMatch(
      /host port tcp\/8080 already forwarded to domain 'other'/,
    );
  });
  it("the domain's own record is not a conflict", () => {
    const r = { ...other(mine('10.77.0.5', 8080)), domain: 'web', uuid: U };
    expect(findConflicts({ name: 'web', uuid: U }, mine('10.77.0.5', 8080), state([r]))).toEqual([]);
  });
});
