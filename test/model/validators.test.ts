import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { Problems } from '../../src/model/domain-metadata.js';
import {
  checkMac,
  checkNetworkName,
  dnsmasqSafe,
  hasControlChars,
  normalizeMac,
  normalizeUuid,
  parseUnsigned,
  problem,
  singleLine,
  validateHostname,
  validateIfname,
  validateIp,
  validateMac,
  validateNetworkName,
  validatePort,
  validatePrefix,
  validateUuid,
} from '../../src/model/validators.js';

describe('problem', () => {
  it('builds a Problem', () => {
    expect(problem('network/name', 'x', 'bad')).toEqual({ path: 'network/name', value: 'x', reason: 'bad' });
  });
});

describe('validateNetworkName', () => {
  it.each(['default', 'my-net_1', 'a', 'default"with"quotes"', 'n.et', 'x'.repeat(64), 'a&b;c'])(
    'accepts %s',
    (v) => expect(validateNetworkName(v)).toBeUndefined(),
  );
  it.each([
    ['', 'empty'],
    ['x'.repeat(65), 'longer than 64'],
    ['a/b', "'/'"],
    ['a\\b', "'/'"],
    ['.hidden', "start with '.'"],
    ['..', "start with '.'"],
    ['-rf', "start with '-'"],
    ['a\nb', 'newline'],
    ['a\u0000b', 'NUL'],
    ['a\u007fb', 'U+007F'],
    ['a\u2028b', 'U+2028'],
    ['a b', 'whitespace'],
    ['a,b', "','"],
    ['a#b', "'#'"],
    ['a=b', "'='"],
  ])('rejects %j (%s)', (v, why) => {
    expect(validateNetworkName(v)).toContain(why);
  });
});

describe('validateIfname', () => {
  it.each(['virbr0', 'eth0', 'vnet12', 'a'.repeat(15), 'br-lan.10', 'ens1f0np0'])('accepts %s', (v) =>
    expect(validateIfname(v)).toBeUndefined(),
  );
  it.each([
    ['', 'empty'],
    ['a'.repeat(16), '15 bytes'],
    ['ééééééééé', '15 bytes'], // 9 chars, 18 bytes
    ['.', "'.' or '..'"],
    ['..', "'.' or '..'"],
    ['a/b', "'/'"],
    ['eth0:1', "':'"],
    ['virbr%d', "'%'"],
    ['a,b', "','"],
    ['a#b', "'#'"],
    ['a=b', "'='"],
    ['a"b', `'"'`],
    ['a b', 'whitespace'],
    ['a\tb', 'tab'],
    ['a\nb', 'newline'],
    ['-x', "start with '-'"],
    ['br"0', `'"'`],
    ['br;0', 'only letters'],
    ['br{0}', 'only letters'],
    ['brü', 'only letters'],
    ['virbr+', 'wildcard'],
  ])('rejects %j (%s)', (v, why) => expect(validateIfname(v)).toContain(why));
});

describe('validateMac', () => {
  it('accepts unicast MACs in either case', () => {
    expect(validateMac('52:54:00:AB:cd:ef', { unicast: true })).toBeUndefined();
    expect(normalizeMac('52:54:00:AB:cd:ef')).toBe('52:54:00:ab:cd:ef');
  });
  it('rejects malformed MACs', () => {
    for (const v of [
      '',
      '52:54:00:ab:cd',
      '52-54-00-ab-cd-ef',
      '52:54:00:ab:cd:eg',
      '525400abcdef',
      '52:54:00:ab:cd:ef\n',
    ]) {
      expect(validateMac(v)).toContain('not a MAC');
    }
  });
  it('rejects multicast only when unicast is required', () => {
    expect(validateMac('01:00:5e:00:00:01')).toBeUndefined();
    expect(validateMac('01:00:5e:00:00:01', { unicast: true })).toContain('multicast');
    expect(validateMac('ff:ff:ff:ff:ff:ff', { unicast: true })).toContain('multicast');
  });
});

describe('validateUuid', () => {
  it('accepts dashed and undashed forms and normalizes', () => {
    expect(validateUuid('81ff0d90-c91e-6742-64da-4a736edb9a9b')).toBeUndefined();
    expect(validateUuid('81FF0D90C91E674264DA4A736EDB9A9B')).toBeUndefined();
    expect(normalizeUuid('81FF0D90C91E674264DA4A736EDB9A9B')).toBe('81ff0d90-c91e-6742-64da-4a736edb9a9b');
  });
  it('rejects others', () => {
    for (const v of [
      '',
      'x',
      '81ff0d90-c91e-6742-64da-4a736edb9a9',
      '81ff0d90-c91e-6742-64da-4a736edb9a9bb',
      'g1ff0d90-c91e-6742-64da-4a736edb9a9b',
    ]) {
      expect(validateUuid(v)).toContain('not a UUID');
    }
    expect(() => normalizeUuid('nope')).toThrow();
  });
});

describe('validateHostname', () => {
  it.each(['a', 'a.example.com', 'host-1', '1host', 'x'.repeat(63)])('accepts %s', (v) =>
    expect(validateHostname(v)).toBeUndefined(),
  );
  it('allows a trailing dot and underscores only when asked', () => {
    expect(validateHostname('example.com.')).toContain('empty label');
    expect(validateHostname('example.com.', { allowTrailingDot: true })).toBeUndefined();
    expect(validateHostname('_sip._tcp')).toContain('only letters');
    expect(validateHostname('_sip._tcp', { allowUnderscore: true })).toBeUndefined();
  });
  it.each([
    ['', 'empty'],
    ['-a', 'only letters'],
    ['a-', 'only letters'],
    ['a..b', 'empty label'],
    ['x'.repeat(64), 'longer than 63'],
    [`${'a'.repeat(60)}.`.repeat(5).slice(0, 300), 'longer than 253'],
    ['a b', 'only letters'],
    ['a,b', 'only letters'],
    ['a\nb', 'newline'],
    ['a;rm -rf', 'only letters'],
  ])('rejects %j (%s)', (v, why) => expect(validateHostname(v)).toContain(why));
});

describe('validateIp / validatePrefix / validatePort / parseUnsigned', () => {
  it('checks addresses and families', () => {
    expect(validateIp('192.168.122.1')).toBeUndefined();
    expect(validateIp('2001:db8::1', 'ipv6')).toBeUndefined();
    expect(validateIp('2001:db8::1', 'ipv4')).toBe('expected an IPv4 address');
    expect(validateIp('10.0.0.1', 'ipv6')).toBe('expected an IPv6 address');
    expect(validateIp('300.1.1.1')).toBe('not an IP address');
    expect(validateIp('x', 'ipv4')).toBe('not an IPv4 address');
    expect(validateIp('x', 'ipv6')).toBe('not an IPv6 address');
  });
  it('checks prefixes', () => {
    expect(validatePrefix('24', 'ipv4')).toBeUndefined();
    expect(validatePrefix('0', 'ipv4')).toBeUndefined();
    expect(validatePrefix('33', 'ipv4')).toContain('0..32');
    expect(validatePrefix('128', 'ipv6')).toBeUndefined();
    expect(validatePrefix('129', 'ipv6')).toContain('0..128');
    expect(validatePrefix('-1', 'ipv6')).toContain('0..128');
    expect(validatePrefix('2 4', 'ipv4')).toContain('0..32');
  });
  it('checks ports', () => {
    expect(validatePort('1')).toBeUndefined();
    expect(validatePort('65535')).toBeUndefined();
    expect(validatePort('0')).toContain('1..65535');
    expect(validatePort('0', { allowZero: true })).toBeUndefined();
    expect(validatePort('65536')).toContain('1..65535');
    expect(validatePort('0x10')).toContain('1..65535');
  });
  it('parses unsigned integers strictly', () => {
    expect(parseUnsigned('42')).toBe(42);
    expect(parseUnsigned('007')).toBe(7);
    for (const v of ['', '-1', '+1', '1.5', '1e3', ' 1', '0x1', '9'.repeat(16)])
      expect(parseUnsigned(v)).toBeUndefined();
  });
});

describe('dnsmasqSafe / singleLine / hasControlChars', () => {
  it('rejects line breaks and control characters in every context', () => {
    for (const ctx of ['line', 'option'] as const) {
      expect(dnsmasqSafe('a\nb', ctx)).toContain('newline');
      expect(dnsmasqSafe('a\rb', ctx)).toContain('carriage return');
      expect(dnsmasqSafe('a\u0000b', ctx)).toContain('NUL');
      expect(dnsmasqSafe('a\u001bb', ctx)).toContain('U+001B');
      expect(dnsmasqSafe('a\u0085b', ctx)).toContain('U+0085');
    }
  });
  it("rejects ',', '=', '#', quotes and backslash inside an option", () => {
    for (const c of [',', '=', '#', '"', '\\']) {
      expect(dnsmasqSafe(`a${c}b`)).toContain(`'${c}'`);
      expect(dnsmasqSafe(`a${c}b`, 'line')).toBeUndefined();
    }
    expect(dnsmasqSafe('plain value with spaces')).toBeUndefined();
  });
  it('singleLine and hasControlChars', () => {
    expect(singleLine('ok')).toBeUndefined();
    expect(singleLine('a\nb')).toContain('newline');
    expect(hasControlChars('a\tb')).toBe(true);
    expect(hasControlChars('a b')).toBe(false);
  });
});

describe('checkMac / checkNetworkName (the one check each, for the bus, metadata and hook data)', () => {
  it('checkMac: lower case out; a multicast or malformed MAC is a ValidationError naming field and value', () => {
    expect(checkMac('52:54:00:AA:bb:01')).toBe('52:54:00:aa:bb:01');
    const err = (() => {
      try {
        checkMac('01:00:5e:00:00:01', 'hookData/mac');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).problems).toEqual([
      {
        path: 'hookData/mac',
        value: '01:00:5e:00:00:01',
        reason: 'expected a unicast MAC address, found a multicast one',
      },
    ]);
    expect(() => checkMac('52:54:00:aa:bb')).toThrow(/mac: not a MAC address/);
  });

  it('checkNetworkName: returns the name; a bad one names the field', () => {
    expect(checkNetworkName('lab-1')).toBe('lab-1');
    expect(() => checkNetworkName('a/b')).toThrow(/name: network name must not contain '\/'/);
  });

  it('Problems.check records a shared check under the caller path', () => {
    const p = new Problems();
    expect(p.check('metadata/interface@mac', '03:00:00:00:00:01', checkMac)).toBeUndefined();
    expect(p.list).toEqual([
      {
        path: 'metadata/interface@mac',
        value: '03:00:00:00:00:01',
        reason: 'expected a unicast MAC address, found a multicast one',
      },
    ]);
  });
});
