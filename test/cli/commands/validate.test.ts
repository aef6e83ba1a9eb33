import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rootElementName } from '../../../src/cli/commands/validate.js';
import { main } from '../../../src/cli/main.js';
import { VIRTNET_DOMAIN_NS } from '../../../src/model/domain.js';
import { libvirtHooksDir, missingShared } from '../../helpers/shared.js';
import { captureIo } from '../io.js';

const DEFAULT_NET = `<network>
  <name>default</name>
  <uuid>3a0c8ed5-88d1-495a-9e01-d1e6f6ea65cc</uuid>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:1e:d8:35'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
`;

async function run(argv: string[], files: Record<string, string>) {
  const io = captureIo(files);
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

describe('virtnetctl validate', () => {
  it('a valid network: exit 0, one summary line, nothing on stderr', async () => {
    const r = await run(['validate', 'net.xml'], { 'net.xml': DEFAULT_NET });
    expect(r).toEqual({ code: 0, out: "net.xml: valid network 'default' (nat)\n", err: '' });
  });

  it('an invalid network: exit 1 and one line per problem naming path, reason and value', async () => {
    const bad = DEFAULT_NET.replace("name='virbr0'", "name='virbr0 x'").replace(
      "<range start='192.168.122.2'",
      "<range start='10.0.0.2'",
    );
    const r = await run(['validate', 'bad.xml'], { 'bad.xml': bad });
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    const lines = r.err.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).toMatch(/^bad\.xml: network\/\S+: .+ \(value .+\)$/);
    expect(r.err).toContain('"virbr0 x"');
    expect(r.err).toContain('"10.0.0.2"');
  });

  it('malformed XML: exit 1 with the reason', async () => {
    const r = await run(['validate', 'x.xml'], { 'x.xml': '<network><name>x</name>' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^x\.xml: .*(well-formed|XML)/);
  });

  it('ignored elements are warnings, and the file is still valid', async () => {
    const xml = DEFAULT_NET.replace(
      '</network>',
      "<bandwidth><inbound average='1000'/></bandwidth>\n</network>",
    );
    const r = await run(['validate', 'w.xml'], { 'w.xml': xml });
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/^w\.xml: warning: .*bandwidth.*not applied/m);
  });

  it('a domain with virtnet metadata is checked as a domain', async () => {
    const dom = `<domain type='kvm'><name>vm1</name><metadata>
      <virtnet:domain xmlns:virtnet="${VIRTNET_DOMAIN_NS}"><virtnet:interface index="0" ip="192.168.122.9">
      <virtnet:forward proto="tcp" host-port="2222" guest-port="22"/></virtnet:interface></virtnet:domain></metadata>
      <devices><interface type='bridge'><mac address='52:54:00:00:00:09'/><source bridge='virbr0'/></interface></devices></domain>`;
    const ok = await run(['validate', 'd.xml'], { 'd.xml': dom });
    expect(ok).toEqual({
      code: 0,
      out: "d.xml: valid domain 'vm1' (1 interface, virtnet metadata for 1)\n",
      err: '',
    });
    const bad = await run(['validate', 'd.xml'], {
      'd.xml': dom.replace('host-port="2222"', 'host-port="99999"'),
    });
    expect(bad.code).toBe(1);
    expect(bad.err).toBe(
      'd.xml: domain/metadata/virtnet:domain/virtnet:interface[0]/virtnet:forward[0]@host-port: port must be an integer 1..65535 (value "99999")\n',
    );
  });

  it.skipIf(missingShared(libvirtHooksDir))(
    'captured hook stdin validates (domain and hookData)',
    async () => {
      const files: Record<string, string> = {};
      for (const f of ['04-qemu-prepare-begin.stdin.xml', '05-network-port-created-begin.stdin.xml'])
        files[f] = readFileSync(join(libvirtHooksDir, f), 'utf8');
      const a = await run(['validate', '04-qemu-prepare-begin.stdin.xml'], files);
      expect(a.out).toContain("valid domain 'golden-vm' (1 interface, no virtnet metadata)");
      const b = await run(['validate', '05-network-port-created-begin.stdin.xml'], files);
      expect(b.out).toContain("valid network hook data for network 'default'");
    },
  );

  it('a missing file: exit 3 (not found)', async () => {
    const r = await run(['validate', 'missing.xml'], {});
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/ENOENT/);
  });

  it('usage: exactly one file', async () => {
    expect((await run(['validate'], {})).code).toBe(2);
    expect((await run(['validate', 'a', 'b'], {})).code).toBe(2);
  });

  it('rootElementName skips the declaration and comments', () => {
    expect(rootElementName('\uFEFF<?xml version="1.0"?>\n<!-- c --><domain/>')).toBe('domain');
    expect(rootElementName('junk')).toBeUndefined();
  });
});
