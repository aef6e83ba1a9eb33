import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  activeLeases,
  diffLeases,
  parseLeaseFile,
  parseLeases,
  parseLeasesStrict,
  readLeaseFile,
} from '../../src/dnsmasq/leases.js';
import { ValidationError } from '../../src/errors.js';

// The shape dnsmasq 2.90 writes (v4 leases, then the duid line and the v6 leases).
const SAMPLE = `1764270000 52:54:00:aa:bb:01 192.168.122.10 vm1 01:52:54:00:aa:bb:01
0 52:54:00:aa:bb:02 192.168.122.11 * *
1764270100 06-0a:0b:0c:0d:0e:0f 192.168.122.12 tr-host ff:00:00:00:01
duid 00:01:00:01:2e:af:12:34:52:54:00:00:00:01
1764270200 12345 2001:db8:ca2:2::1a vm1 00:04:8f:2a:9b:1c:0e:11:22:33:44:55:66:77:88:99:aa:bb
1764270300 T7 FD00::99 * *
`;

describe('parseLeaseFile', () => {
  it('reads v4 lines, the duid line and v6 lines', () => {
    const r = parseLeaseFile(SAMPLE);
    expect(r.problems).toEqual([]);
    expect(r.serverDuid).toBe('00:01:00:01:2e:af:12:34:52:54:00:00:00:01');
    expect(r.leases).toEqual([
      {
        family: 'ipv4',
        mac: '52:54:00:aa:bb:01',
        ip: '192.168.122.10',
        hostname: 'vm1',
        expiry: 1764270000,
        clientId: '01:52:54:00:aa:bb:01',
      },
      { family: 'ipv4', mac: '52:54:00:aa:bb:02', ip: '192.168.122.11', hostname: '', expiry: 0 },
      {
        family: 'ipv4',
        mac: '0a:0b:0c:0d:0e:0f',
        hwType: 6,
        ip: '192.168.122.12',
        hostname: 'tr-host',
        expiry: 1764270100,
        clientId: 'ff:00:00:00:01',
      },
      {
        family: 'ipv6',
        mac: '',
        iaid: 12345,
        ip: '2001:db8:ca2:2::1a',
        hostname: 'vm1',
        expiry: 1764270200,
        clientId: '00:04:8f:2a:9b:1c:0e:11:22:33:44:55:66:77:88:99:aa:bb',
      },
      { family: 'ipv6', mac: '', iaid: 7, temporary: true, ip: 'fd00::99', hostname: '', expiry: 1764270300 },
    ]);
  });

  it('normalizes MAC case and single-digit bytes', () => {
    expect(parseLeases('5 52:54:0:AA:b:1 10.0.0.2 * *')[0]!.mac).toBe('52:54:00:aa:0b:01');
  });

  it('skips malformed lines and names them', () => {
    const text =
      'garbage\n1 zz:zz 10.0.0.1 * *\nx 52:54:00:00:00:01 10.0.0.1 * *\n1 52:54:00:00:00:01 10.0.0.300 * *\n1 abc fd00::1 * *\n\n2 52:54:00:00:00:02 10.0.0.2 h *\n';
    const r = parseLeaseFile(text);
    expect(r.leases.map((l) => l.ip)).toEqual(['10.0.0.2']);
    expect(r.problems.map((p) => p.path)).toEqual([
      'leases:1',
      'leases:2',
      'leases:3',
      'leases:4',
      'leases:5',
    ]);
    expect(r.problems[0]!.reason).toMatch(/5 fields/);
    expect(() => parseLeasesStrict(text)).toThrow(ValidationError);
    try {
      parseLeasesStrict(text);
    } catch (e) {
      expect((e as ValidationError).problems[1]).toMatchObject({
        path: 'leases:2',
        value: '1 zz:zz 10.0.0.1 * *',
      });
    }
  });

  it('an empty file has no leases', () => {
    expect(parseLeaseFile('')).toEqual({ leases: [], problems: [] });
  });
});

describe('readLeaseFile', () => {
  it('reads a file and treats a missing one as empty', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'leases-'));
    try {
      expect(await readLeaseFile(join(dir, 'none'))).toEqual([]);
      writeFileSync(join(dir, 'l'), SAMPLE);
      expect((await readLeaseFile(join(dir, 'l'))).length).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('activeLeases', () => {
  it('keeps infinite and unexpired leases', () => {
    const ls = parseLeases(SAMPLE);
    expect(activeLeases(ls, 1764270150).map((l) => l.ip)).toEqual([
      '192.168.122.11',
      '2001:db8:ca2:2::1a',
      'fd00::99',
    ]);
  });
});

describe('diffLeases', () => {
  it('reports added, updated (renewal or new name) and deleted leases', () => {
    const a = parseLeases('10 52:54:00:00:00:01 10.0.0.1 a *\n10 52:54:00:00:00:02 10.0.0.2 b *\n');
    const b = parseLeases('20 52:54:00:00:00:01 10.0.0.1 a *\n10 52:54:00:00:00:03 10.0.0.3 c *\n');
    expect(diffLeases(a, b)).toEqual([
      { event: 'updated', mac: '52:54:00:00:00:01', ip: '10.0.0.1', hostname: 'a' },
      { event: 'added', mac: '52:54:00:00:00:03', ip: '10.0.0.3', hostname: 'c' },
      { event: 'deleted', mac: '52:54:00:00:00:02', ip: '10.0.0.2', hostname: 'b' },
    ]);
    expect(diffLeases(a, a)).toEqual([]);
  });
});
