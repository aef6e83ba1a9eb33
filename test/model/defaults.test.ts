import { describe, expect, it } from 'vitest';
import { allocateBridgeName, applyDefaults, randomLibvirtMac } from '../../src/model/defaults.js';
import type { Network } from '../../src/model/network.js';

function net(over: Partial<Network> = {}): Network {
  return {
    name: 'n',
    uuid: 'u',
    forward: { mode: 'nat', interfaces: [] },
    bridge: {},
    ips: [],
    routes: [],
    dnsmasqOptions: [],
    ignored: [],
    ...over,
  };
}

describe('defaults', () => {
  it('allocates the lowest free virbr%d', () => {
    expect(allocateBridgeName([])).toBe('virbr0');
    expect(allocateBridgeName(['virbr0', 'virbr2'])).toBe('virbr1');
    expect(() => allocateBridgeName(Array.from({ length: 256 }, (_, i) => `virbr${i}`))).toThrow('no free');
  });

  it('generates 52:54:00 MACs', () => {
    for (let i = 0; i < 20; i++) expect(randomLibvirtMac()).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });

  it('fills bridge name, stp, delay and mac for networks that own their bridge, without mutating', () => {
    const n = net();
    const d = applyDefaults(n, { usedBridgeNames: ['virbr0'], randomMac: () => '52:54:00:aa:bb:cc' });
    expect(d.bridge).toEqual({ name: 'virbr1', stp: true, delay: 0 });
    expect(d.mac).toBe('52:54:00:aa:bb:cc');
    expect(n.bridge).toEqual({});
    expect(n.mac).toBeUndefined();
  });

  it('keeps given values', () => {
    const d = applyDefaults(net({ bridge: { name: 'x', stp: false, delay: 3 }, mac: '52:54:00:00:00:09' }), {
      randomMac: () => 'no',
    });
    expect(d.bridge).toEqual({ name: 'x', stp: false, delay: 3 });
    expect(d.mac).toBe('52:54:00:00:00:09');
  });

  it('leaves host-bridge networks alone and fills an empty uuid', () => {
    const d = applyDefaults(
      net({ uuid: '', forward: { mode: 'bridge', interfaces: [] }, bridge: { name: 'br0' } }),
      {
        randomUuid: () => 'fresh',
      },
    );
    expect(d.uuid).toBe('fresh');
    expect(d.bridge).toEqual({ name: 'br0' });
    expect(d.mac).toBeUndefined();
  });
});
