import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeLabel, encodeLabel, networkNameFromPath, networkPath } from '../../src/bus/path-encode.js';
import { isObjectPathValid } from '../daemon/object-path.js';

describe('sd_bus_path_encode-style labels', () => {
  it.each([
    ['default', 'default'],
    ['my-net', 'my_2dnet'],
    ['net0', 'net0'],
    ['0net', '_30net'],
    ['', '_'],
    ['a_b', 'a_5fb'],
    ['a.b', 'a_2eb'],
    ['ü', '_c3_bc'],
  ])('%j → %j (as systemd encodes it)', (name, label) => {
    expect(encodeLabel(name)).toBe(label);
    expect(decodeLabel(label)).toBe(name);
  });

  it('network paths', () => {
    expect(networkPath('my-net')).toBe('/org/virtnet/network1/network/my_2dnet');
    expect(networkNameFromPath('/org/virtnet/network1/network/my_2dnet')).toBe('my-net');
    expect(networkNameFromPath('/org/virtnet/network1/network/a/b')).toBeUndefined();
    expect(networkNameFromPath('/org/virtnet/network1')).toBeUndefined();
  });

  it('rejects non-canonical or malformed labels', () => {
    expect(decodeLabel('_2D')).toBeUndefined(); // uppercase hex is not what encode produces
    expect(decodeLabel('a_2')).toBeUndefined();
    expect(decodeLabel('a-b')).toBeUndefined();
    expect(decodeLabel('_61')).toBeUndefined(); // 'a' is never escaped
  });

  it('round-trips any string and always yields a valid object path', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
        const p = networkPath(s);
        expect(isObjectPathValid(p)).toBe(true);
        expect(networkNameFromPath(p)).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });
});
