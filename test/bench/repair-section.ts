/**
 * Lost rules put back: virtnet's engine in-process with `coexist` on (as virtnetd runs it), a NAT
 * network up, then `nft flush ruleset` (what Debian's nftables.service does on restart) 20 times per
 * backend; each figure is the time from the flush command's return (rules gone) to the engine's
 * `repaired` event (rules back in, one transaction). Runs INSIDE the bench's network namespace
 * (run.ts: `--inner repair`).
 */
import { LinuxEngine } from '../../src/engine/engine.js';
import type { Network } from '../../src/model/network.js';
import { mustRun, type Sample, sleep } from './lib.js';

const net: Network = {
  name: 'benchrepair',
  uuid: '6f3c1e2a-0000-4000-8000-00000000f112',
  forward: { mode: 'nat', interfaces: [] },
  bridge: { name: 'vbrep0', stp: false, delay: 0 },
  mac: '52:54:00:b1:00:01',
  ips: [
    {
      family: 'ipv4',
      address: '10.120.0.1',
      prefix: 24,
      dhcp: { ranges: [{ start: '10.120.0.100', end: '10.120.0.200' }], hosts: [] },
    },
  ],
  routes: [],
  dnsmasqOptions: [],
  ignored: [],
};

export async function repairSection(runDir: string, runs: number): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const backend of ['nftables', 'iptables'] as const) {
    const engine = await LinuxEngine.create({
      runDir: `${runDir}-${backend}`,
      firewall: backend,
      coexist: true,
    });
    try {
      await engine.start(net);
      const gaps: number[] = [];
      for (let r = 0; r < runs; r++) {
        let flushed = 0;
        const back = new Promise<number>((resolve) => {
          const on = (e: { name: string }) => {
            if (e.name !== net.name || !flushed) return;
            engine.off('repaired', on);
            resolve(performance.now() - flushed);
          };
          engine.on('repaired', on);
        });
        await mustRun(['nft', 'flush', 'ruleset']);
        flushed = performance.now();
        const gap = await Promise.race([back, sleep(5000).then(() => Number.NaN)]);
        if (Number.isNaN(gap)) throw new Error(`${backend}: rules not back 5 s after a flush`);
        gaps.push(gap);
        await sleep(100);
      }
      out.push({
        key: `repair.${backend}`,
        what: 'nft flush ruleset → the network’s rules back (from the flush to the repair done)',
        unit: 'ms',
        xs: gaps,
        note: backend,
      });
      await engine.stop(net.name);
    } finally {
      await engine.close();
    }
  }
  return out;
}
