/**
 * virtnet's engine alone, in-process (no bus, no client): runs INSIDE the bench's network namespace
 * (run.ts re-runs itself there with `--inner engine DIR`). Start/stop of a NAT network with DHCP
 * (resolves when dnsmasq serves and the rules are in), one reservation added/removed live with
 * 1/100/1,000/10,000 present, 1/10/100 networks brought up at once.
 */

import { LinuxEngine } from '../../src/engine/engine.js';
import type { DhcpHost, Network } from '../../src/model/network.js';
import { benchMac, type Sample, time } from './lib.js';

function natNet(i: number, hosts = 0): Network {
  const third = i % 256;
  const second = 100 + Math.floor(i / 256);
  const dhcpHosts: DhcpHost[] = [];
  // Reservations spread over a /16 so 10,000 fit.
  for (let h = 0; h < hosts; h++)
    dhcpHosts.push({
      mac: benchMac(h),
      ip: `10.${second}.${2 + Math.floor(h / 250)}.${2 + (h % 250)}`,
      name: `h${h}`,
    });
  return {
    name: `bench${i}`,
    uuid: `6f3c1e2a-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    forward: { mode: 'nat', interfaces: [] },
    bridge: { name: `vbb${i}`, stp: true, delay: 0 },
    mac: `52:54:00:b0:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
    ips: [
      {
        family: 'ipv4',
        address: hosts ? `10.${second}.0.1` : `10.${second}.${third}.1`,
        prefix: hosts ? 16 : 24,
        dhcp: {
          ranges: [
            hosts
              ? { start: `10.${second}.200.1`, end: `10.${second}.250.254` }
              : { start: `10.${second}.${third}.100`, end: `10.${second}.${third}.200` },
          ],
          hosts: dhcpHosts,
        },
      },
    ],
    routes: [],
    dnsmasqOptions: [],
    ignored: [],
  };
}

export async function engineSection(runDir: string, runs: number, heavyRuns: number): Promise<Sample[]> {
  const out: Sample[] = [];
  const engine = await LinuxEngine.create({ runDir });
  const backend = engine.firewallBackend;
  try {
    // Warm-up (first exec of each tool, JIT).
    await engine.start(natNet(0));
    await engine.stop('bench0');

    const starts: number[] = [];
    const stops: number[] = [];
    for (let r = 0; r < runs; r++) {
      starts.push(await time(() => engine.start(natNet(1))));
      stops.push(await time(() => engine.stop('bench1')));
    }
    out.push({
      key: 'engine.start',
      what: 'network start (NAT + DHCP, dnsmasq serving)',
      unit: 'ms',
      xs: starts,
      note: backend,
    });
    out.push({ key: 'engine.stop', what: 'network stop', unit: 'ms', xs: stops });

    for (const present of [1, 100, 1000, 10000]) {
      const net = natNet(2, present);
      await engine.start(net);
      const adds: number[] = [];
      const removes: number[] = [];
      for (let r = 0; r < runs; r++) {
        const m = benchMac(present + r);
        adds.push(
          await time(() =>
            engine.addHost(net.name, { mac: m, ip: `10.102.199.${r + 1}`, hostname: `live${r}` }),
          ),
        );
        removes.push(await time(() => engine.removeHost(net.name, m)));
      }
      const p = present.toLocaleString('en-US');
      out.push({
        key: `engine.add.${present}`,
        what: `add 1 reservation live, ${p} present`,
        unit: 'ms',
        xs: adds,
      });
      out.push({
        key: `engine.remove.${present}`,
        what: `remove 1 reservation live, ${p} present`,
        unit: 'ms',
        xs: removes,
      });
      await engine.stop(net.name);
    }

    // N networks asked for at once (the engine runs different networks side by side), and stopped.
    for (const n of [1, 10, 100]) {
      const ups: number[] = [];
      const downs: number[] = [];
      for (let r = 0; r < heavyRuns; r++) {
        ups.push(
          await time(() => Promise.all(Array.from({ length: n }, (_, k) => engine.start(natNet(10 + k))))),
        );
        downs.push(
          await time(() => Promise.all(Array.from({ length: n }, (_, k) => engine.stop(`bench${10 + k}`)))),
        );
      }
      out.push({
        key: `engine.up.${n}`,
        what: `${n} network${n > 1 ? 's' : ''} up (asked at once, total)`,
        unit: 'ms',
        xs: ups,
      });
      out.push({
        key: `engine.down.${n}`,
        what: `${n} network${n > 1 ? 's' : ''} down (asked at once, total)`,
        unit: 'ms',
        xs: downs,
      });
    }
  } finally {
    await engine.close();
  }
  return out;
}
