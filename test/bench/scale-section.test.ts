/** The scale bench's networks: valid for virtnet's parser, isolated with DHCP, no two alike. */
import { describe, expect, it } from 'vitest';
import { parseNetworkXml } from '../../src/model/parse-network.js';
import { SCALE_NS, scaleXml } from './scale-section.js';

describe('scale bench networks', () => {
  it('1,000 isolated networks with DHCP: distinct names, bridges and subnets, all accepted', () => {
    const n = Math.max(...SCALE_NS);
    const names = new Set<string>();
    const bridges = new Set<string>();
    const subnets = new Set<string>();
    for (let i = 0; i < n; i++) {
      const { network } = parseNetworkXml(scaleXml(i));
      expect(network.forward?.mode ?? 'none').toBe('none');
      names.add(network.name);
      bridges.add(network.bridge!.name!);
      subnets.add(JSON.stringify(network.ips));
      expect(network.bridge!.name!.length).toBeLessThanOrEqual(15);
      expect(JSON.stringify(network.ips)).toContain('range');
    }
    expect([names.size, bridges.size, subnets.size]).toEqual([n, n, n]);
  });
});
