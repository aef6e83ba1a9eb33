/**
 * Engine benchmark (`npm run bench`; root; not part of `npm test`).
 *
 * Runs the engine for real inside a namespace of its own (`vh5-bench-PID`), never in the root
 * namespace: the outer process makes the namespace and re-runs this file inside it with `--inner`.
 * Measures, as medians with min/max over several runs:
 *   - start of a NAT network with DHCP (resolves when dnsmasq is serving and the rules are in),
 *   - stop,
 *   - adding one DHCP reservation live with 1 / 100 / 1000 / 10000 reservations present,
 *   - 100 networks started one after the other (total), and stopped.
 * Targets (issue 3): start ≤ 100 ms, stop ≤ 80 ms, add ≤ 15 ms flat, 100 networks ≤ 5 s. libvirt 9.0's
 * figures on this machine (lab-facts, measured separately, not in this run): 410 / 350 / 1061 ms.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LinuxEngine } from '../../src/engine/engine.js';
import type { DhcpHost, Network } from '../../src/model/network.js';

const self = fileURLToPath(import.meta.url);
const RUNS = Number(process.env.BENCH_RUNS ?? 10);

function stats(xs: number[]): { median: number; min: number; max: number; n: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s.at(-1)!, n: s.length };
}

function mac(i: number): string {
  const b = [(i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff];
  return `52:54:01:${b.map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

function natNet(i: number, hosts = 0): Network {
  const third = i % 256;
  const second = 100 + Math.floor(i / 256);
  const dhcpHosts: DhcpHost[] = [];
  // Reservations spread over a /16 so 10,000 fit.
  for (let h = 0; h < hosts; h++) {
    dhcpHosts.push({
      mac: mac(h),
      ip: `10.${second}.${2 + Math.floor(h / 250)}.${2 + (h % 250)}`,
      name: `h${h}`,
    });
  }
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

type Row = { what: string; target: string; median: number; min: number; max: number; n: number };

async function inner(runDir: string): Promise<void> {
  const rows: Row[] = [];
  const push = (what: string, target: string, xs: number[]) => rows.push({ what, target, ...stats(xs) });
  const engine = await LinuxEngine.create({ runDir });
  const time = async (fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    await fn();
    return performance.now() - t0;
  };

  // Warm-up (first exec of each tool, JIT).
  await engine.start(natNet(0));
  await engine.stop('bench0');

  const starts: number[] = [];
  const stops: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    starts.push(await time(() => engine.start(natNet(1))));
    stops.push(await time(() => engine.stop('bench1')));
  }
  push(`start (nat + DHCP, ${engine.firewallBackend})`, '≤ 100 ms', starts);
  push('stop', '≤ 80 ms', stops);

  for (const present of [1, 100, 1000, 10000]) {
    const net = natNet(2, present);
    await engine.start(net);
    const adds: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const m = mac(present + r);
      adds.push(
        await time(() =>
          engine.addHost(net.name, { mac: m, ip: `10.102.199.${r + 1}`, hostname: `live${r}` }),
        ),
      );
    }
    push(`add 1 reservation, ${present} present`, '≤ 15 ms', adds);
    await engine.stop(net.name);
  }

  // 100 networks: all asked for at once (the engine runs different networks side by side).
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 100 }, (_, k) => engine.start(natNet(10 + k))));
  const up = performance.now() - t0;
  const t1 = performance.now();
  await Promise.all(Array.from({ length: 100 }, (_, k) => engine.stop(`bench${10 + k}`)));
  const down = performance.now() - t1;
  rows.push({
    what: '100 networks up (all at once, total)',
    target: '≤ 5 s',
    median: up,
    min: up,
    max: up,
    n: 1,
  });
  rows.push({
    what: '100 networks down (all at once, total)',
    target: '',
    median: down,
    min: down,
    max: down,
    n: 1,
  });
  // And one after the other, for comparison.
  const t2 = performance.now();
  for (let k = 0; k < 100; k++) await engine.start(natNet(10 + k));
  const upSeq = performance.now() - t2;
  const t3 = performance.now();
  for (let k = 0; k < 100; k++) await engine.stop(`bench${10 + k}`);
  const downSeq = performance.now() - t3;
  rows.push({
    what: '100 networks up (one by one, total)',
    target: '',
    median: upSeq,
    min: upSeq,
    max: upSeq,
    n: 1,
  });
  rows.push({
    what: '100 networks down (one by one, total)',
    target: '',
    median: downSeq,
    min: downSeq,
    max: downSeq,
    n: 1,
  });

  await engine.close();
  process.stdout.write(`${JSON.stringify(rows)}\n`);
}

function table(rows: Row[]): string {
  const f = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);
  const head = ['measure', 'median', 'min', 'max', 'runs', 'target'];
  const body = rows.map((r) => [r.what, f(r.median), f(r.min), f(r.max), String(r.n), r.target]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}

function outer(): void {
  if (process.getuid?.() !== 0) {
    console.error('bench: needs root (it makes a network namespace)');
    process.exit(1);
  }
  const ns = `vh5-bench-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'vh5-bench-'));
  chmodSync(dir, 0o755);
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, self, '--inner', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 << 20,
    });
    if (r.status !== 0) throw new Error(`bench failed (exit ${r.status})`);
    const rows = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Row[];
    console.log(table(rows));
    console.log(
      '\nlibvirt 9.0 on this machine (lab-facts, not measured in this run): net-start 410 ms, net-destroy 350 ms, net-update add ip-dhcp-host 1061 ms',
    );
  } finally {
    // Anything left in the namespace (a dnsmasq of a failed run) goes with it.
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .stdout.split(/\s+/)
      .filter(Boolean);
    for (const p of pids) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {}
    }
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--inner') {
  inner(join(process.argv[3]!, 'run')).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  outer();
}
