import { describe, expect, it } from 'vitest';
import { parseLeasesStrict } from '../../src/dnsmasq/leases.js';
import {
  classify,
  foreignMessage,
  libvirtNetworkFacts,
  planPublish,
  portHookXml,
  publishedXml,
} from '../../src/libvirt/publish.js';
import { carryOverLines, parseStatusFile } from '../../src/libvirt/status-leases.js';
import { parseNetworkHookData } from '../../src/model/domain.js';

const T = { name: 'default', uuid: '0f6a5c1e-8d2b-4f7a-9c3e-1b2d3e4f5a6b', bridge: 'virbr0' };
const LIBVIRT_DEFAULT = `<network>
  <name>default</name>
  <uuid>0f6a5c1e-8d2b-4f7a-9c3e-1b2d3e4f5a6b</uuid>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
  </ip>
</network>
`;

describe('publishedXml', () => {
  it('is a bridge-mode network with the name, UUID and bridge, escaped', () => {
    expect(publishedXml(T)).toBe(
      "<network>\n  <name>default</name>\n  <uuid>0f6a5c1e-8d2b-4f7a-9c3e-1b2d3e4f5a6b</uuid>\n  <forward mode='bridge'/>\n  <bridge name='virbr0'/>\n</network>\n",
    );
    expect(publishedXml({ ...T, name: "a&b'" })).toContain('<name>a&amp;b&apos;</name>');
    expect(libvirtNetworkFacts(publishedXml(T))).toEqual({ ...T, forwardMode: 'bridge' });
  });
});

describe('classify', () => {
  it('own only with the same UUID, bridge mode and our bridge', () => {
    expect(classify(T, undefined)).toEqual({ kind: 'absent' });
    expect(classify(T, publishedXml(T))).toEqual({ kind: 'own' });
    expect(classify(T, publishedXml({ ...T, uuid: T.uuid.toUpperCase() }))).toEqual({ kind: 'own' });
    expect(classify(T, LIBVIRT_DEFAULT)).toEqual({
      kind: 'foreign',
      reason: 'its forward mode is nat, not bridge',
    });
    expect(classify(T, publishedXml({ ...T, uuid: '11111111-2222-3333-4444-555555555555' }))).toEqual({
      kind: 'foreign',
      reason: 'its UUID is 11111111-2222-3333-4444-555555555555',
    });
    expect(classify(T, publishedXml({ ...T, bridge: 'br9' }))).toEqual({
      kind: 'foreign',
      reason: 'its bridge is br9, not virbr0',
    });
    expect(classify(T, '<network><name>default</name><uuid>x</uuid></network>').kind).toBe('foreign');
    expect(classify(T, '<network>').kind).toBe('foreign');
  });
  it('an isolated network (no <forward>) is reported as such', () => {
    const iso = `<network><name>default</name><uuid>${T.uuid}</uuid><bridge name='virbr0'/></network>`;
    expect(classify(T, iso)).toEqual({
      kind: 'foreign',
      reason: 'its forward mode is (isolated), not bridge',
    });
  });
  it('the foreign message names the command to run', () => {
    expect(foreignMessage('default', 'its forward mode is nat, not bridge')).toBe(
      "libvirt network default is not virtnet's (its forward mode is nat, not bridge); left alone — run: virtnetctl import-libvirt default",
    );
  });
});

describe('planPublish', () => {
  const own = { xml: publishedXml(T) };
  it('absent → define, autostart, start', () => {
    expect(planPublish(T, { active: false, autostart: false }, 'active').steps).toEqual([
      { op: 'define', xml: publishedXml(T) },
      { op: 'autostart' },
      { op: 'start' },
    ]);
  });
  it('already in line → nothing (idempotent)', () => {
    expect(planPublish(T, { ...own, active: true, autostart: true }, 'active').steps).toEqual([]);
    expect(planPublish(T, { ...own, active: false, autostart: true }, 'inactive').steps).toEqual([]);
    expect(planPublish(T, { active: false, autostart: false }, 'absent').steps).toEqual([]);
  });
  it('repairs what is missing only', () => {
    expect(planPublish(T, { ...own, active: false, autostart: true }, 'active').steps).toEqual([
      { op: 'start' },
    ]);
    expect(planPublish(T, { ...own, active: true, autostart: false }, 'active').steps).toEqual([
      { op: 'autostart' },
    ]);
  });
  it('stop keeps it defined but inactive; undefine removes it', () => {
    expect(planPublish(T, { ...own, active: true, autostart: true }, 'inactive').steps).toEqual([
      { op: 'destroy' },
    ]);
    expect(planPublish(T, { ...own, active: true, autostart: true }, 'absent').steps).toEqual([
      { op: 'destroy' },
      { op: 'undefine' },
    ]);
    expect(planPublish(T, { ...own, active: false, autostart: true }, 'absent').steps).toEqual([
      { op: 'undefine' },
    ]);
  });
  it('a foreign network is never touched, whatever is wanted', () => {
    for (const want of ['active', 'inactive', 'absent'] as const) {
      const p = planPublish(T, { xml: LIBVIRT_DEFAULT, active: true, autostart: true }, want);
      expect(p.steps).toEqual([]);
      expect(p.ownership.kind).toBe('foreign');
    }
  });
});

describe('libvirt status file → dnsmasq leases', () => {
  const STATUS = JSON.stringify([
    {
      'ip-address': '192.168.122.50',
      'mac-address': '52:54:00:AA:BB:01',
      hostname: 'vm1',
      'expiry-time': 2000,
    },
    {
      'ip-address': '192.168.122.51',
      'mac-address': '52:54:00:aa:bb:02',
      'client-id': '01:52:54:00:aa:bb:02',
      'expiry-time': 0,
    },
    { 'ip-address': '192.168.122.52', 'mac-address': '52:54:00:aa:bb:03', 'expiry-time': 500 },
    { 'ip-address': 'fd00::5', iaid: '1234', 'expiry-time': 3000 },
    { 'ip-address': '192.168.122.53', 'expiry-time': 3000 },
    { 'mac-address': '52:54:00:aa:bb:04', 'expiry-time': 3000 },
  ]);
  it('reads valid entries and names the bad ones', () => {
    const f = parseStatusFile(STATUS);
    expect(f.leases.map((l) => l.ip)).toEqual([
      '192.168.122.50',
      '192.168.122.51',
      '192.168.122.52',
      'fd00::5',
    ]);
    expect(f.leases[0]!.mac).toBe('52:54:00:aa:bb:01');
    expect(f.problems.map((p) => `${p.path}: ${p.reason}`)).toEqual([
      'status[4]: mac-address is missing or invalid',
      'status[5]: ip-address is missing or invalid',
    ]);
    expect(parseStatusFile('').leases).toEqual([]);
    expect(parseStatusFile('[]').leases).toEqual([]);
    expect(parseStatusFile('{').problems[0]!.path).toBe('status');
    expect(parseStatusFile('{}').problems[0]!.reason).toBe('must be a JSON array');
  });
  it('writes unexpired IPv4 leases as dnsmasq lines that dnsmasq’s format parser reads back', () => {
    const text = carryOverLines(parseStatusFile(STATUS).leases, 1000);
    expect(text).toBe(
      '2000 52:54:00:aa:bb:01 192.168.122.50 vm1 *\n0 52:54:00:aa:bb:02 192.168.122.51 * 01:52:54:00:aa:bb:02\n',
    );
    const back = parseLeasesStrict(text);
    expect(back.map((l) => [l.mac, l.ip])).toEqual([
      ['52:54:00:aa:bb:01', '192.168.122.50'],
      ['52:54:00:aa:bb:02', '192.168.122.51'],
    ]);
  });
  it('carrying over twice adds nothing (leases already present are skipped)', () => {
    const leases = parseStatusFile(STATUS).leases;
    const first = parseLeasesStrict(carryOverLines(leases, 1000));
    expect(carryOverLines(leases, 1000, first)).toBe('');
  });
});

describe('portHookXml', () => {
  it("is a network hook document the hooks' parser reads back as libvirt's port-created", () => {
    const t = { name: 'default', uuid: '3c9f4a2e-1b7d-4e6a-8f05-d2c4b6a8e0f1', bridge: 'virbr0' };
    const port = { domain: 'web&1', uuid: '720a1d5a-9c10-4ce5-8614-f1cfed9481be', mac: '52:54:00:aa:bb:01' };
    expect(parseNetworkHookData(portHookXml(t, port))).toEqual({
      network: { name: 'default', uuid: t.uuid, bridge: 'virbr0', forwardMode: 'bridge' },
      port: {
        owner: { name: 'web&1', uuid: port.uuid },
        mac: '52:54:00:aa:bb:01',
        plug: { type: 'network', bridge: 'virbr0' },
      },
    });
    expect(
      parseNetworkHookData(portHookXml(t, { domain: 'a', mac: '52:54:00:aa:bb:02' })).port?.owner,
    ).toEqual({
      name: 'a',
    });
  });
});
