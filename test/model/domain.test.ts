import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import {
  dnsNameFor,
  parseDomainXml,
  parseNetworkHookData,
  VIRTNET_DOMAIN_NS,
} from '../../src/model/domain.js';
import { libvirtHooksDir, missingShared, projectRoot } from '../helpers/shared.js';

function problemsOf(fn: () => unknown) {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).problems;
  }
  throw new Error('expected a ValidationError');
}

/** A small hand-written domain with three interfaces and optional metadata. */
function domainXml(metadata = '', extraIface = ''): string {
  return `<domain type='qemu' id='7'>
  <name>web1</name>
  <uuid>720A1D5A9C104CE58614F1CFED9481BE</uuid>
  ${metadata ? `<metadata>${metadata}</metadata>` : ''}
  <devices>
    <interface type='bridge'>
      <mac address='52:54:00:AA:BB:01'/>
      <source bridge='vnbr0'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
    </interface>
    <interface type='ethernet'>
      <mac address='52:54:00:aa:bb:02'/>
      <target dev='tap-web1' managed='no'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:03'/>
      <source network='default'/>
    </interface>
    ${extraIface}
  </devices>
</domain>`;
}

const NS = `xmlns:virtnet="${VIRTNET_DOMAIN_NS}"`;

describe('parseDomainXml: captured libvirt 9.0 qemu hook stdin', () => {
  const skip = missingShared(libvirtHooksDir);
  const files = skip ? [] : readdirSync(libvirtHooksDir).filter((f) => /-qemu-.*\.stdin\.xml$/.test(f));

  it.skipIf(skip)('has the five qemu calls', () => {
    expect(files.map((f) => f.split('-')[2])).toEqual(['prepare', 'start', 'started', 'stopped', 'release']);
  });

  for (const f of files) {
    const stage = f.split('-')[2]!;
    it.skipIf(skip)(`${f}`, () => {
      const d = parseDomainXml(readFileSync(join(libvirtHooksDir, f), 'utf8'));
      expect(d.name).toBe('golden-vm');
      expect(d.uuid).toBe('720a1d5a-9c10-4ce5-8614-f1cfed9481be');
      expect(d.virtnet).toBeUndefined();
      expect(d.warnings).toEqual([]);
      expect(d.interfaces).toHaveLength(1);
      const i = d.interfaces[0]!;
      expect(i).toMatchObject({ index: 0, type: 'network', mac: '52:54:00:aa:bb:01', model: 'virtio' });
      expect(i.source.network).toBe('default');
      const running = stage === 'start' || stage === 'started';
      // prepare: no tap yet; stopped/release: tap and runtime bridge gone.
      expect(i.target).toBe(running ? 'vnet0' : undefined);
      expect(i.source.bridge).toBe(running ? 'virbr0' : undefined);
      expect(i.source.portid).toBe(running ? 'b093c970-3df5-4dcc-b9cb-a76e75d848cf' : undefined);
      expect(d.id).toBe(stage === 'stopped' || stage === 'release' ? undefined : 1);
      expect(dnsNameFor(d, i)).toBe('golden-vm');
    });
  }
});

describe('parseNetworkHookData: captured libvirt 9.0 network hook stdin', () => {
  const skip = missingShared(libvirtHooksDir);
  const files = skip ? [] : readdirSync(libvirtHooksDir).filter((f) => /-network-.*\.stdin\.xml$/.test(f));

  it.skipIf(skip)('has the six network calls', () => {
    expect(files).toHaveLength(6);
  });

  for (const f of files) {
    it.skipIf(skip)(`${f}`, () => {
      const h = parseNetworkHookData(readFileSync(join(libvirtHooksDir, f), 'utf8'));
      expect(h.network.name).toBe('default');
      expect(h.network.bridge).toBe('virbr0');
      expect(h.network.forwardMode).toBe('nat');
      expect(h.network.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      if (/port-(created|deleted)/.test(f)) {
        expect(h.port).toEqual({
          uuid: 'b093c970-3df5-4dcc-b9cb-a76e75d848cf',
          owner: { name: 'golden-vm', uuid: '720a1d5a-9c10-4ce5-8614-f1cfed9481be' },
          mac: '52:54:00:aa:bb:01',
          plug: { type: 'network', bridge: 'virbr0' },
        });
      } else {
        expect(h.port).toBeUndefined();
      }
    });
  }

  it.skipIf(skip)('refuses a domain document as hook data and vice versa', () => {
    const dom = readFileSync(join(libvirtHooksDir, '06-qemu-start-begin.stdin.xml'), 'utf8');
    const net = readFileSync(join(libvirtHooksDir, '05-network-port-created-begin.stdin.xml'), 'utf8');
    expect(problemsOf(() => parseNetworkHookData(dom))[0]!.reason).toMatch(/<hookData> root/);
    expect(problemsOf(() => parseDomainXml(net))[0]!.reason).toMatch(/<domain> root/);
  });
});

describe('parseDomainXml: interfaces', () => {
  it('reads every interface with its index, type, source, tap and model', () => {
    const d = parseDomainXml(domainXml());
    expect(d.id).toBe(7);
    expect(d.uuid).toBe('720a1d5a-9c10-4ce5-8614-f1cfed9481be');
    expect(d.interfaces).toEqual([
      {
        index: 0,
        type: 'bridge',
        rawType: 'bridge',
        mac: '52:54:00:aa:bb:01',
        source: { bridge: 'vnbr0' },
        target: 'vnet3',
        model: 'virtio',
      },
      {
        index: 1,
        type: 'ethernet',
        rawType: 'ethernet',
        mac: '52:54:00:aa:bb:02',
        source: {},
        target: 'tap-web1',
      },
      {
        index: 2,
        type: 'network',
        rawType: 'network',
        mac: '52:54:00:aa:bb:03',
        source: { network: 'default' },
      },
    ]);
  });

  it('keeps interface types it does not handle as "other" with a warning', () => {
    const d = parseDomainXml(
      domainXml(
        '',
        "<interface type='direct'><mac address='52:54:00:aa:bb:04'/><source dev='eth0' mode='vepa'/></interface>",
      ),
    );
    expect(d.interfaces[3]).toMatchObject({ index: 3, type: 'other', rawType: 'direct', source: {} });
    expect(d.warnings).toEqual([expect.stringContaining("interface type 'direct' is not handled")]);
  });

  it('does not fail a domain over a bad tap name on an interface virtnet ignores', () => {
    const d = parseDomainXml(
      domainXml(
        '',
        "<interface type='vhostuser'><mac address='52:54:00:aa:bb:04'/><target dev='a-name-far-too-long-for-linux'/></interface>",
      ),
    );
    expect(d.interfaces[3]!.target).toBeUndefined();
    expect(d.warnings.some((w) => w.includes('target@dev'))).toBe(true);
  });

  it.each([
    ["<target dev='vnet0; rm -rf /'/>", 'domain/devices/interface[3]/target@dev', 'vnet0; rm -rf /'],
    ["<target dev='this-is-16-bytes'/>", 'domain/devices/interface[3]/target@dev', 'this-is-16-bytes'],
    ["<mac address='52:54:00:aa:bb'/>", 'domain/devices/interface[3]/mac@address', '52:54:00:aa:bb'],
    ["<mac address='01:00:5e:00:00:01'/>", 'domain/devices/interface[3]/mac@address', '01:00:5e:00:00:01'],
    ["<source bridge='br/0'/>", 'domain/devices/interface[3]/source@bridge', 'br/0'],
    ["<source network='de\nfault'/>", 'domain/devices/interface[3]/source@network', 'de\nfault'],
    ["<model type='virtio&amp;x'/>", 'domain/devices/interface[3]/model@type', 'virtio&x'],
  ])('rejects %s with path and value', (inner, path, value) => {
    const p = problemsOf(() =>
      parseDomainXml(domainXml('', `<interface type='bridge'>${inner}</interface>`)),
    );
    expect(p).toHaveLength(1);
    expect(p[0]!.path).toBe(path);
    expect(p[0]!.value).toBe(value);
    expect(p[0]!.reason.length).toBeGreaterThan(3);
  });

  it('rejects two interfaces with the same MAC', () => {
    const p = problemsOf(() =>
      parseDomainXml(
        domainXml('', "<interface type='bridge'><mac address='52:54:00:aa:bb:01'/></interface>"),
      ),
    );
    expect(p).toEqual([
      {
        path: 'domain/devices/interface[3]/mac@address',
        value: '52:54:00:aa:bb:01',
        reason: 'same MAC as interface[0]',
      },
    ]);
  });

  it('names missing or malformed basics', () => {
    expect(problemsOf(() => parseDomainXml('<domain><devices/></domain>'))[0]).toMatchObject({
      path: 'domain/name',
      value: undefined,
    });
    expect(problemsOf(() => parseDomainXml('<domain><name>a/b</name></domain>'))[0]).toMatchObject({
      path: 'domain/name',
      value: 'a/b',
    });
    expect(
      problemsOf(() => parseDomainXml('<domain><name>x</name><uuid>nope</uuid></domain>'))[0],
    ).toMatchObject({
      path: 'domain/uuid',
      value: 'nope',
    });
    expect(problemsOf(() => parseDomainXml('<domain id="-1"><name>x</name></domain>'))[0]).toMatchObject({
      path: 'domain@id',
      value: '-1',
    });
  });

  it.each([
    ['', /not well-formed|root element/],
    ['<domain><name>x</name>', /not well-formed/],
    ['<domain/><domain/>', /exactly one root element/],
    ['<!DOCTYPE d [<!ENTITY a "b">]><domain><name>&a;</name></domain>', /DOCTYPE/],
    ['<domain><name>x</name><__proto__/></domain>', /not well-formed/],
    ['<domain><name>x<![CDATA[y]]></name></domain>', /CDATA/],
    ['<domain><name>x&foo;</name></domain>', /predefined entities/],
    ['<network><name>x</name></network>', /<domain> root/],
  ])('refuses a bad document %#', (xml, reason) => {
    const p = problemsOf(() => parseDomainXml(xml));
    expect(p[0]!.reason).toMatch(reason);
  });

  it('domain names that are not host names get no DNS name unless the metadata gives one', () => {
    const d = parseDomainXml(domainXml().replace('<name>web1</name>', '<name>my vm</name>'));
    expect(d.name).toBe('my vm');
    expect(dnsNameFor(d, d.interfaces[0]!)).toBeUndefined();
  });
});

describe('parseDomainXml: virtnet metadata namespace', () => {
  const full = `<virtnet:domain ${NS}>
      <virtnet:interface mac="52:54:00:AA:BB:01" ip="192.168.122.50" ip6="fd00:1:0::50" name="web">
        <virtnet:forward proto="tcp" host-port="8080" guest-port="80"/>
        <virtnet:forward proto="udp" host-port="5353" host-address="203.0.113.7"/>
        <virtnet:forward proto="tcp" host-port="2222" guest-port="22" family="ipv6"/>
      </virtnet:interface>
      <virtnet:interface index="1" network="default" ip="192.168.122.51"/>
    </virtnet:domain>`;

  it('parses the documented example and attaches each entry to its interface', () => {
    const d = parseDomainXml(domainXml(full));
    expect(d.virtnet?.interfaces).toHaveLength(2);
    expect(d.interfaces[0]!.virtnet).toEqual({
      match: { mac: '52:54:00:aa:bb:01' },
      ip: '192.168.122.50',
      ip6: 'fd00:1::50',
      name: 'web',
      forwards: [
        { proto: 'tcp', hostPort: 8080, guestPort: 80, families: ['ipv4', 'ipv6'] },
        { proto: 'udp', hostPort: 5353, guestPort: 5353, hostAddress: '203.0.113.7', families: ['ipv4'] },
        { proto: 'tcp', hostPort: 2222, guestPort: 22, families: ['ipv6'] },
      ],
    });
    expect(d.interfaces[1]!.virtnet).toEqual({
      match: { index: 1 },
      network: 'default',
      ip: '192.168.122.51',
      forwards: [],
    });
    expect(d.interfaces[2]!.virtnet).toBeUndefined();
    expect(dnsNameFor(d, d.interfaces[0]!)).toBe('web');
    expect(dnsNameFor(d, d.interfaces[1]!)).toBe('web1');
  });

  it('accepts any prefix, a default namespace and a declaration on <metadata>', () => {
    const a = parseDomainXml(
      domainXml(
        `<vn:domain xmlns:vn="${VIRTNET_DOMAIN_NS}"><vn:interface index="0" ip="10.0.0.5"/></vn:domain>`,
      ),
    );
    expect(a.interfaces[0]!.virtnet?.ip).toBe('10.0.0.5');
    const b = parseDomainXml(
      domainXml(`<domain xmlns="${VIRTNET_DOMAIN_NS}"><interface index="0" ip="10.0.0.6"/></domain>`),
    );
    expect(b.interfaces[0]!.virtnet?.ip).toBe('10.0.0.6');
    const c = parseDomainXml(
      domainXml(`<virtnet:domain><virtnet:interface index="0" ip="10.0.0.7"/></virtnet:domain>`).replace(
        '<metadata>',
        `<metadata ${NS}>`,
      ),
    );
    expect(c.interfaces[0]!.virtnet?.ip).toBe('10.0.0.7');
  });

  it('ignores other applications\u2019 metadata and warns about other virtnet namespace versions', () => {
    const d = parseDomainXml(
      domainXml(
        `<app:x xmlns:app="http://example.com/app"><app:interface mac="zz"/></app:x>
         <v2:domain xmlns:v2="https://virtnet.org/xmlns/domain/2"><v2:whatever/></v2:domain>`,
      ),
    );
    expect(d.virtnet).toBeUndefined();
    expect(d.warnings).toEqual([
      expect.stringContaining("namespace 'https://virtnet.org/xmlns/domain/2' is not supported"),
    ]);
  });

  it.each([
    [`<virtnet:interface ip="10.0.0.1"/>`, 'virtnet:interface[0]', 'needs exactly one of mac= or index='],
    [`<virtnet:interface mac="52:54:00:aa:bb:01" index="0"/>`, 'virtnet:interface[0]', 'exactly one'],
    [
      `<virtnet:interface mac="52:54:00:ff:ff:ff"/>`,
      'virtnet:interface[0]@mac',
      'no <interface> with this mac',
    ],
    [`<virtnet:interface index="9"/>`, 'virtnet:interface[0]@index', 'no <interface> with this index'],
    [`<virtnet:interface index="-1"/>`, 'virtnet:interface[0]@index', 'not an interface index'],
    [`<virtnet:interface index="0" ip="fd00::1"/>`, 'virtnet:interface[0]@ip', 'IPv4'],
    [`<virtnet:interface index="0" ip6="10.0.0.1"/>`, 'virtnet:interface[0]@ip6', 'IPv6'],
    [`<virtnet:interface index="0" name="web,1"/>`, 'virtnet:interface[0]@name', 'host name'],
    [`<virtnet:interface index="0" name="a&#10;dhcp-range=1"/>`, 'virtnet:interface[0]@name', 'host name'],
    [`<virtnet:interface index="0" network=".etc"/>`, 'virtnet:interface[0]@network', "start with '.'"],
    [`<virtnet:interface index="0" network="a#b"/>`, 'virtnet:interface[0]@network', "'#'"],
    [`<virtnet:interface index="0" colour="red"/>`, 'virtnet:interface[0]@colour', 'unknown attribute'],
    [
      `<virtnet:interface index="0"><virtnet:fwd/></virtnet:interface>`,
      'virtnet:interface[0]/virtnet:fwd',
      'unknown element',
    ],
    [`<virtnet:iface index="0"/>`, 'virtnet:domain/virtnet:iface', 'unknown element'],
    [
      `<virtnet:interface index="0"/><virtnet:interface mac="52:54:00:aa:bb:01"/>`,
      'virtnet:interface[1]',
      'same <interface>',
    ],
    [
      `<virtnet:interface index="0" ip="10.0.0.1"><virtnet:forward proto="sctp" host-port="1"/></virtnet:interface>`,
      'virtnet:forward[0]@proto',
      "'tcp' or 'udp'",
    ],
    [
      `<virtnet:interface index="0" ip="10.0.0.1"><virtnet:forward proto="tcp"/></virtnet:interface>`,
      'virtnet:forward[0]@host-port',
      'required',
    ],
    [
      `<virtnet:interface index="0" ip="10.0.0.1"><virtnet:forward proto="tcp" host-port="0"/></virtnet:interface>`,
      'virtnet:forward[0]@host-port',
      'port',
    ],
    [
      `<virtnet:interface index="0" ip="10.0.0.1"><virtnet:forward proto="tcp" host-port="80" guest-port="65536"/></virtnet:interface>`,
      'virtnet:forward[0]@guest-port',
      'port',
    ],
    [
      `<virtnet:interface index="0"><virtnet:forward proto="tcp" host-port="80"/></virtnet:interface>`,
      'virtnet:forward[0]',
      'needs a fixed ip= or ip6=',
    ],
    [
      `<virtnet:interface index="0" ip="10.0.0.1"><virtnet:forward proto="tcp" host-port="80" family="ipv6"/></virtnet:interface>`,
      'virtnet:forward[0]',
      'needs a fixed ip6=',
    ],
    [
      `<virtnet:interface index="0" ip="10.0.0.1"><virtnet:forward proto="tcp" host-port="80" host-address="fd00::1" family="ipv4"/></virtnet:interface>`,
      'virtnet:forward[0]@host-address',
      'not an ipv4 address',
    ],
    [
      `<virtnet:interface index="0" ip="10.0.0.1"><virtnet:forward proto="tcp" host-port="80" family="inet"/></virtnet:interface>`,
      'virtnet:forward[0]@family',
      "'ipv4' or 'ipv6'",
    ],
    [
      `<virtnet:interface index="0" ip="10.0.0.1"><virtnet:forward proto="tcp" host-port="80"/></virtnet:interface><virtnet:interface index="1" ip="10.0.0.2"><virtnet:forward proto="tcp" host-port="80" guest-port="81"/></virtnet:interface>`,
      'virtnet:interface[1]/virtnet:forward[0]@host-port',
      'already forwarded',
    ],
  ])('rejects %s', (inner, pathEnd, reason) => {
    const p = problemsOf(() => parseDomainXml(domainXml(`<virtnet:domain ${NS}>${inner}</virtnet:domain>`)));
    expect(p.length).toBeGreaterThanOrEqual(1);
    const hit = p.find((x) => x.path.endsWith(pathEnd));
    expect(hit, JSON.stringify(p)).toBeDefined();
    expect(hit!.path.startsWith('domain/metadata/virtnet:domain')).toBe(true);
    expect(hit!.reason).toContain(reason);
  });

  it('allows the same host port for different protocols, families or host addresses', () => {
    const d = parseDomainXml(
      domainXml(`<virtnet:domain ${NS}><virtnet:interface index="0" ip="10.0.0.1" ip6="fd00::1">
        <virtnet:forward proto="tcp" host-port="80"/>
        <virtnet:forward proto="udp" host-port="80"/>
      </virtnet:interface><virtnet:interface index="1" ip="10.0.0.2" ip6="fd00::2">
        <virtnet:forward proto="tcp" host-port="81" family="ipv4"/>
        <virtnet:forward proto="tcp" host-port="81" family="ipv6"/>
        <virtnet:forward proto="tcp" host-port="82" host-address="192.0.2.1"/>
        <virtnet:forward proto="tcp" host-port="82" host-address="192.0.2.2"/>
      </virtnet:interface></virtnet:domain>`),
    );
    expect(d.virtnet!.interfaces.flatMap((i) => i.forwards)).toHaveLength(6);
  });

  it('refuses two virtnet metadata elements', () => {
    const p = problemsOf(() =>
      parseDomainXml(domainXml(`<virtnet:domain ${NS}/><vn:domain xmlns:vn="${VIRTNET_DOMAIN_NS}"/>`)),
    );
    expect(p[0]!.reason).toMatch(/more than one virtnet metadata element/);
  });

  it('reports every problem at once', () => {
    const p = problemsOf(() =>
      parseDomainXml(
        domainXml(
          `<virtnet:domain ${NS}><virtnet:interface index="0" ip="x" ip6="y" name="-bad"/></virtnet:domain>`,
        ),
      ),
    );
    expect(p.map((x) => x.path.split('@')[1])).toEqual(['ip', 'ip6', 'name']);
  });
});

describe('parseNetworkHookData', () => {
  it('reads an isolated network without bridge or forward', () => {
    expect(parseNetworkHookData('<hookData><network><name>iso</name></network></hookData>')).toEqual({
      network: { name: 'iso' },
    });
  });
  it('treats <forward/> without mode as nat', () => {
    expect(
      parseNetworkHookData('<hookData><network><name>n</name><forward/></network></hookData>').network
        .forwardMode,
    ).toBe('nat');
  });
  it.each([
    ['<hookData></hookData>', 'hookData/network'],
    [
      '<hookData><network><name>n</name><bridge name="a b"/></network></hookData>',
      'hookData/network/bridge@name',
    ],
    [
      '<hookData><network><name>n</name></network><networkport><mac address="nope"/></networkport></hookData>',
      'hookData/networkport/mac@address',
    ],
    [
      '<hookData><network><name>n</name></network><networkport><owner><name>a&#10;b</name></owner></networkport></hookData>',
      'hookData/networkport/owner/name',
    ],
  ])('rejects %s', (xml, path) => {
    expect(problemsOf(() => parseNetworkHookData(xml))[0]!.path).toBe(path);
  });
});

describe('README', () => {
  it('the documented metadata example parses as documented', () => {
    const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
    const block = /```xml\n(<domain[\s\S]*?<\/domain>)\n```/.exec(readme);
    expect(block, 'README has a ```xml domain example').not.toBeNull();
    const d = parseDomainXml(block![1]!);
    expect(d.interfaces[0]!.virtnet).toMatchObject({ ip: '192.168.122.50', ip6: 'fd00:1::50', name: 'web' });
    expect(d.interfaces[0]!.virtnet!.forwards).toHaveLength(2);
    expect(d.interfaces[1]!.virtnet).toMatchObject({ match: { index: 1 }, network: 'lab' });
    expect(readme).toContain(VIRTNET_DOMAIN_NS);
  });
});
