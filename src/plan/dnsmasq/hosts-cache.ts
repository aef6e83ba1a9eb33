/**
 * The hostsfile of a network with live reservations, built incrementally: the XML part rendered once
 * per definition and each live line once, so adding one reservation costs the same with 1 or 10,000
 * present. Same bytes as renderHostsfile(net, extra). Pure (the cache is a plain value the caller keeps).
 */
import type { Network } from '../../model/network.js';
import type { HostEntry } from '../../model/values.js';
import { renderHostsfile } from './hosts.js';

/** The hostsfile split the way the planner builds it: [XML hosts v4][live v4][XML hosts v6][live v6]. */
export interface HostsCache {
  v4: string;
  v6: string;
  /** Rendered line of each live entry, by the entry's JSON. */
  lines: Map<string, string>;
}

const NO_IPS: Network = {
  name: 'live',
  uuid: '',
  forward: { mode: 'none', interfaces: [] },
  bridge: {},
  ips: [],
  routes: [],
  dnsmasqOptions: [],
  ignored: [],
};

export function hostsCacheOf(net: Network): HostsCache {
  const only = (family: 'ipv4' | 'ipv6'): Network => ({
    ...net,
    ips: net.ips.map((ip) =>
      ip.family === family || !ip.dhcp ? ip : { ...ip, dhcp: { ...ip.dhcp, hosts: [] } },
    ),
  });
  return { v4: renderHostsfile(only('ipv4')), v6: renderHostsfile(only('ipv6')), lines: new Map() };
}

/** The hostsfile for the cached network + `extra` (same bytes as renderHostsfile(net, extra)). */
export function cachedHostsfile(cache: HostsCache, extra: readonly HostEntry[]): string {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const h of extra) {
    if (!h.mac) continue;
    const key = JSON.stringify(h);
    let line = cache.lines.get(key);
    if (line === undefined) {
      line = renderHostsfile(NO_IPS, [h]);
      cache.lines.set(key, line);
    }
    (h.ip?.includes(':') ? v6 : v4).push(line);
  }
  return cache.v4 + v4.join('') + cache.v6 + v6.join('');
}

/** Forget the rendered line of a live entry that was removed. */
export function forgetHost(cache: HostsCache, h: HostEntry): void {
  cache.lines.delete(JSON.stringify(h));
}
