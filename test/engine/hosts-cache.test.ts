import { describe, expect, it } from 'vitest';
import type { Network } from '../../src/model/network.js';
import type { HostEntry } from '../../src/model/values.js';
import { cachedHostsfile, hostsCacheOf } from '../../src/plan/dnsmasq/hosts-cache.js';
import { renderHostsfile } from '../../src/plan/dnsmasq.js';

const net: Network = {
  name: 'n',
  uuid: 'u',
  forward: { mode: 'nat', interfaces: [] },
  bridge: { name: 'virbr0' },
  ips: [
    {
      family: 'ipv4',
      address: '10.0.0.1',
      prefix: 24,
      dhcp: {
        ranges: [{ start: '10.0.0.100', end: '10.0.0.200' }],
        hosts: [
          { mac: '52:54:00:00:00:01', ip: '10.0.0.10', name: 'a' },
          { name: 'b', ip: '10.0.0.11', lease: { expiry: 3600, unit: 'seconds' } },
        ],
      },
    },
    {
      family: 'ipv6',
      address: 'fd00::1',
      prefix: 64,
      dhcp: {
        ranges: [{ start: 'fd00::100', end: 'fd00::1ff' }],
        hosts: [{ id: '0:1:0:1:aa', name: 'c', ip: 'fd00::10' }],
      },
    },
  ],
  routes: [],
  dnsmasqOptions: [],
  ignored: [],
};

describe('hosts cache', () => {
  it('gives the same bytes as the planner, whatever live entries are added and removed', () => {
    const cache = hostsCacheOf(net);
    const extra: HostEntry[] = [];
    const check = () => expect(cachedHostsfile(cache, extra)).toBe(renderHostsfile(net, extra));
    check();
    extra.push({ mac: '52:54:00:00:00:02', ip: '10.0.0.20', hostname: 'live1' });
    check();
    extra.push({ mac: '52:54:00:00:00:03', ip: 'fd00::20' });
    check();
    extra.push({ ip: '10.0.0.30', hostname: 'dnsonly' });
    check();
    extra.push({ mac: '52:54:00:00:00:04', ip: '10.0.0.21' });
    check();
    extra.splice(0, 1);
    check();
  });
});
