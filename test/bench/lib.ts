/**
 * The benchmark harness's shared parts: samples, statistics, targets, the one output table, the machine
 * description, and the network XML every section uses.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

export type Unit = 'ms' | 'calls/s' | 'MB';

/** Raw samples of one figure, as a section measured them. */
export interface Sample {
  key: string;
  what: string;
  unit: Unit;
  xs: number[];
  /** Free text shown after the measure (e.g. the backend). */
  note?: string;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export interface Target {
  /** 'le': the figure must be ≤ value; 'ge': ≥ value (absolute or a ratio). */
  op: 'le' | 'ge';
  value: number;
  /** 'abs': compare the median itself; 'ratio': compare virtnet/other; 'speedup': other/virtnet. */
  on: 'abs' | 'ratio' | 'speedup';
}

export interface Row {
  section: string;
  key: string;
  what: string;
  unit: Unit;
  stat: Stat;
  note?: string;
  /** The same operation measured in the same run by the thing compared against. */
  other?: { label: string; stat: Stat; ratio: number };
  target?: Target;
  met?: boolean;
}

export function stats(xs: number[]): Stat {
  if (xs.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s.at(-1)!, n: s.length };
}

/** The p-th percentile (0–100) of a list. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export function row(section: string, s: Sample, target?: Target, other?: { label: string; s: Sample }): Row {
  const stat = stats(s.xs);
  const r: Row = { section, key: s.key, what: s.what, unit: s.unit, stat };
  if (s.note) r.note = s.note;
  if (other && other.s.xs.length > 0) {
    const o = stats(other.s.xs);
    r.other = { label: other.label, stat: o, ratio: stat.median / o.median };
  }
  if (target) {
    r.target = target;
    const v =
      target.on === 'abs'
        ? stat.median
        : target.on === 'ratio'
          ? r.other?.ratio
          : r.other
            ? 1 / r.other.ratio
            : undefined;
    if (v !== undefined && Number.isFinite(v))
      r.met = target.op === 'le' ? v <= target.value : v >= target.value;
  }
  return r;
}

function fmt(x: number, unit: Unit): string {
  if (!Number.isFinite(x)) return '—';
  if (unit === 'ms')
    return x >= 1000 ? `${(x / 1000).toFixed(2)} s` : x >= 10 ? `${x.toFixed(0)} ms` : `${x.toFixed(1)} ms`;
  if (unit === 'MB') return `${x.toFixed(1)} MB`;
  return `${Math.round(x).toLocaleString('en-US')}/s`;
}

function fmtTarget(t: Target, unit: Unit): string {
  const op = t.op === 'le' ? '≤' : '≥';
  if (t.on === 'ratio') return `${op} ${t.value}× libvirt`;
  if (t.on === 'speedup') return `${op} ${t.value}× faster`;
  return `${op} ${fmt(t.value, unit)}`;
}

function fmtRatio(r: Row): string {
  if (!r.other) return '';
  const x = r.other.ratio;
  // Times are "virtnet takes x× the other"; rates the other way round.
  return x < 1 ? `${x.toFixed(3)}× (${(1 / x).toFixed(1)}× faster)` : `${x.toFixed(2)}×`;
}

/** The one table: every row, grouped by section. */
export function table(rows: Row[]): string {
  const head = [
    'measure',
    'median',
    'min',
    'max',
    'n',
    'compared with (median, min–max)',
    'ratio',
    'target',
    'met',
  ];
  const lines: string[][] = [];
  let section = '';
  const sectionAt = new Set<number>();
  for (const r of rows) {
    if (r.section !== section) {
      section = r.section;
      sectionAt.add(lines.length);
      lines.push([`[${section}]`, '', '', '', '', '', '', '', '']);
    }
    const u = r.unit;
    lines.push([
      `${r.what}${r.note ? ` (${r.note})` : ''}`,
      fmt(r.stat.median, u),
      fmt(r.stat.min, u),
      fmt(r.stat.max, u),
      String(r.stat.n),
      r.other
        ? `${r.other.label} ${fmt(r.other.stat.median, u)} (${fmt(r.other.stat.min, u)}–${fmt(r.other.stat.max, u)}, n=${r.other.stat.n})`
        : '',
      fmtRatio(r),
      r.target ? fmtTarget(r.target, u) : '',
      r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    ]);
  }
  const w = head.map((h, i) =>
    Math.max(h.length, ...lines.filter((_, j) => !sectionAt.has(j)).map((l) => l[i]!.length)),
  );
  const fmtLine = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 1 && i <= 4 ? c.padStart(w[i]!) : c.padEnd(w[i]!)))
      .join(' | ')
      .trimEnd();
  return [
    fmtLine(head),
    w.map((n) => '-'.repeat(n)).join('-|-'),
    ...lines.map((l, j) => (sectionAt.has(j) ? l[0]! : fmtLine(l))),
  ].join('\n');
}

export interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  os: string;
  node: string;
  loadAtStart: number[];
  loadAtEnd?: number[];
  date: string;
}

export function machine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  let os = 'unknown';
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {}
  return {
    cpu: model,
    cores: cpus().length,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    os,
    node: process.version,
    loadAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    date: new Date().toISOString(),
  };
}

export function describeMachine(m: Machine): string {
  const l = (x?: number[]) => (x ? x.map((v) => v.toFixed(2)).join(' ') : '?');
  return `machine: ${m.cpu}, ${m.cores} cores, kernel ${m.kernel}, ${m.os}, node ${m.node}; load average (1/5/15 min) at start ${l(m.loadAtStart)}, at end ${l(m.loadAtEnd)}; ${m.date}`;
}

/** Run a command without a shell; resolve with its exit code and output (never rejects on exit). */
export function runCmd(
  argv: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += String(d);
    });
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * The shell the CLI figures are timed from. A command line is run the way a person's shell or libvirtd
 * runs it: the timer process forks and execs it and waits (bash, timing with $EPOCHREALTIME around the
 * command). Timing from this Node harness instead would add node's own cost of starting a child
 * (~3 ms of fork + exec wait on the lab machine, plus event-loop latency) to every figure, on both sides
 * of each comparison.
 */
const TIMER = `a=$EPOCHREALTIME; "$@"; rc=$?; b=$EPOCHREALTIME; printf '\\n@virtnet-timer %s %s %s\\n' "$rc" "$a" "$b" >&2`;

/** The time between the two $EPOCHREALTIME stamps ("sec.usec"), in ms. */
export function epochSpanMs(a: string, b: string): number {
  const us = (t: string) => {
    const [sec, frac = '0'] = t.split('.');
    return Number(sec) * 1e6 + Number(frac.padEnd(6, '0').slice(0, 6));
  };
  return (us(b) - us(a)) / 1000;
}

/** Run `argv` under the shell timer (see TIMER): its exit code, output and wall time in ms. */
export async function timedRun(
  argv: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ ms: number; code: number; stdout: string; stderr: string }> {
  const r = await runCmd(['bash', '-c', TIMER, 'virtnet-timer', ...argv], opts);
  const m = /\n@virtnet-timer (\d+) (\S+) (\S+)\n$/.exec(r.stderr);
  if (!m) throw new Error(`timer: no timing from bash for '${argv.join(' ')}': ${r.stderr.slice(-300)}`);
  return {
    ms: epochSpanMs(m[2]!, m[3]!),
    code: Number(m[1]),
    stdout: r.stdout,
    stderr: r.stderr.slice(0, m.index),
  };
}

/** The floor of the hooks' fast path: one dbus-send call to the bus itself (DBUS_SYSTEM_BUS_ADDRESS). */
export const DBUS_SEND_FLOOR = [
  'dbus-send',
  '--system',
  '--print-reply',
  '--dest=org.freedesktop.DBus',
  '/org/freedesktop/DBus',
  'org.freedesktop.DBus.GetId',
];

/** timedRun that throws with the command and its stderr on a non-zero exit; the wall time in ms. */
export async function timeRun(
  argv: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<number> {
  const r = await timedRun(argv, opts);
  if (r.code !== 0)
    throw new Error(`'${argv.join(' ')}' failed (exit ${r.code}): ${r.stderr.trim().slice(-600)}`);
  return r.ms;
}

/** Like runCmd, but throws with the command and its stderr on a non-zero exit. */
export async function mustRun(
  argv: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const r = await runCmd(argv, opts);
  if (r.code !== 0)
    throw new Error(`'${argv.join(' ')}' failed (exit ${r.code}): ${r.stderr.trim().slice(-600)}`);
  return r.stdout;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The network every comparison uses, given to virtnet and to libvirt as the same XML: libvirt's classic
 * `default` NAT network (DHCP over the whole /24).
 */
export const DEFAULT_XML = `<network>
  <name>default</name>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
`;

export function benchMac(i: number): string {
  const b = [(i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff];
  return `52:54:01:${b.map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

/** inotify instances free for this user (each dnsmasq takes one; the limit is shared machine-wide). */
export function inotifyFree(): { free: number; limit: number } {
  const limit = Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8'));
  let used = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify') used++;
        } catch {}
      }
    } catch {}
  }
  return { free: limit - used, limit };
}
