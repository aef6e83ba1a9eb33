import { describe, expect, it } from 'vitest';
import {
  broadcastAddress,
  canonicalIp,
  cidr,
  compareIp,
  formatIp,
  inSubnet,
  isIpv4,
  isIpv6,
  netmaskToPrefix,
  networkAddress,
  parseIp,
  prefixToNetmask,
  rangeSize,
  subnetsOverlap,
} from '../../src/model/ip.js';

describe('parseIp', () => {
  it.each(['0.0.0.0', '255.255.255.255', '192.168.122.1'])('accepts IPv4 %s', (a) =>
    expect(isIpv4(a)).toBe(true),
  );
  it.each(['256.0.0.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.4 ', '', 'a.b.c.d', '-1.2.3.4'])(
    'rejects IPv4 %j',
    (a) => expect(parseIp(a)).toBeUndefined(),
  );
  it.each([
    '::',
    '::1',
    '2001:db8::1',
    'fe80::1:2:3:4',
    '1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7::',
    '::ffff:1.2.3.4',
    'F0:0D::F0:0D',
  ])('accepts IPv6 %s', (a) => expect(isIpv6(a)).toBe(true));
  it.each([
    ':::',
    '1::2::3',
    ':1::',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::',
    '12345::',
    'g::1',
    'fe80::1%eth0',
    '1.2.3.4::',
    '::1.2.3',
  ])('rejects IPv6 %j', (a) => expect(parseIp(a)).toBeUndefined());
});

describe('formatIp / canonicalIp (inet_ntop style)', () => {
  it.each([
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['f0:0d::f0:0d', 'f0:d::f0:d'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
    ['::', '::'],
    ['::1', '::1'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['::ffff:a00:1', '::ffff:10.0.0.1'],
    ['::10.0.0.1', '::10.0.0.1'],
    ['2001:db8::', '2001:db8::'],
    ['10.0.0.1', '10.0.0.1'],
  ])('%s → %s', (a, b) => expect(canonicalIp(a)).toBe(b));
  it('returns undefined for garbage', () => expect(canonicalIp('x')).toBeUndefined());
  it('formats IPv4 values', () => expect(formatIp('ipv4', 0xc0a87a01n)).toBe('192.168.122.1'));
});

describe('subnet arithmetic', () => {
  it('netmask <-> prefix', () => {
    expect(netmaskToPrefix('255.255.255.0')).toBe(24);
    expect(netmaskToPrefix('0.0.0.0')).toBe(0);
    expect(netmaskToPrefix('255.255.255.255')).toBe(32);
    expect(netmaskToPrefix('255.0.255.0')).toBeUndefined();
    expect(netmaskToPrefix('x')).toBeUndefined();
    expect(prefixToNetmask(20)).toBe('255.255.240.0');
  });
  it('cidr, network and broadcast addresses', () => {
    expect(cidr('192.168.122.1', 24)).toBe('192.168.122.0/24');
    expect(cidr('2001:db8::1', 64)).toBe('2001:db8::/64');
    expect(formatIp('ipv4', networkAddress('ipv4', parseIp('10.1.2.3')!.value, 8))).toBe('10.0.0.0');
    expect(broadcastAddress('192.168.122.1', 24)).toBe('192.168.122.255');
    expect(() => cidr('x', 1)).toThrow();
  });
  it('membership, overlap, comparison, range size', () => {
    expect(inSubnet('192.168.122.9', '192.168.122.1', 24)).toBe(true);
    expect(inSubnet('192.168.123.9', '192.168.122.1', 24)).toBe(false);
    expect(inSubnet('fd00::1', '192.168.122.1', 24)).toBe(false);
    expect(subnetsOverlap('10.0.0.0', 8, '10.1.0.0', 16)).toBe(true);
    expect(subnetsOverlap('10.0.0.0', 16, '10.1.0.0', 16)).toBe(false);
    expect(compareIp('10.0.0.2', '10.0.0.10')).toBeLessThan(0);
    expect(compareIp('fd00::2', 'fd00::2')).toBe(0);
    expect(rangeSize('10.0.0.2', '10.0.0.254')).toBe(253n);
    expect(rangeSize('10.0.0.9', '10.0.0.2')).toBe(0n);
    expect(rangeSize('10.0.0.1', 'fd00::1')).toBe(0n);
  });
});
