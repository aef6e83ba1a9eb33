/**
 * What the dnsmasq supervisor needs to know about processes, read from /proc (injectable for tests).
 * /proc is the pid namespace's, not the network namespace's: it sees a dnsmasq in any netns.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';

export interface ProcStat {
  /** Single-letter state (R, S, D, Z, …). */
  state: string;
  ppid: number;
  /** Start time in clock ticks since boot: with the pid, identifies one process across pid reuse. */
  startTime: number;
}

export interface ProcessProbe {
  /** The pid in a pid file; undefined when missing or not a pid. */
  readPidFile(path: string): Promise<number | undefined>;
  /** undefined when the process does not exist. */
  stat(pid: number): ProcStat | undefined;
  /** The process's argv; undefined when it does not exist (or is a zombie). */
  cmdline(pid: number): string[] | undefined;
  /** process.kill; throws ESRCH when gone. */
  kill(pid: number, signal: NodeJS.Signals | 0): void;
}

export function parseProcStat(text: string): ProcStat | undefined {
  // "pid (comm) S ppid …": comm may contain spaces and parentheses; fields resume after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text
    .slice(close + 2)
    .trim()
    .split(' ');
  // f[0] = state (field 3), f[1] = ppid (field 4), f[19] = starttime (field 22)
  const state = f[0];
  const ppid = Number(f[1]);
  const startTime = Number(f[19]);
  if (!state || !Number.isInteger(ppid) || !Number.isFinite(startTime)) return undefined;
  return { state, ppid, startTime };
}

export function parsePidFile(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d{1,10}$/.test(t)) return undefined;
  const pid = Number(t);
  return pid > 0 && pid <= 4194304 ? pid : undefined;
}

/** True when `argv` is a dnsmasq started with `confFile` (`--conf-file=F`, `--conf-file F`, `-C F`, `-CF`). */
export function isDnsmasqWithConf(argv: readonly string[], confFile: string): boolean {
  if (argv.length === 0 || basename(argv[0]!) !== 'dnsmasq') return false;
  const want = resolve(confFile);
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    let v: string | undefined;
    if (a.startsWith('--conf-file=')) v = a.slice('--conf-file='.length);
    else if (a === '--conf-file' || a === '-C') v = argv[i + 1];
    else if (a.startsWith('-C') && a.length > 2) v = a.slice(2);
    if (v !== undefined && v !== '' && resolve(v) === want) return true;
  }
  return false;
}

/**
 * /proc/PID/stat through one reused buffer. The supervisors poll it ten times a second per dnsmasq;
 * readFileSync of a /proc file (size 0) allocates a 64 KiB buffer per read: with many networks that
 * is a steady stream of garbage and an idle daemon whose RSS keeps growing (README, Numbers).
 */
const statBuffer = Buffer.allocUnsafe(4096);
function readProcStat(pid: number): string {
  const fd = openSync(`/proc/${pid}/stat`, 'r');
  try {
    let n = 0;
    for (;;) {
      const r = readSync(fd, statBuffer, n, statBuffer.length - n, null);
      if (r <= 0) break;
      n += r;
      if (n === statBuffer.length) break; // never for a stat line (comm is at most 64 bytes)
    }
    return statBuffer.toString('latin1', 0, n);
  } finally {
    closeSync(fd);
  }
}

export const realProbe: ProcessProbe = {
  async readPidFile(path) {
    try {
      return parsePidFile(await readFile(path, 'utf8'));
    } catch {
      return undefined;
    }
  },
  stat(pid) {
    try {
      return parseProcStat(readProcStat(pid));
    } catch {
      return undefined;
    }
  },
  cmdline(pid) {
    try {
      const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (raw === '') return undefined; // zombie or kernel thread
      return raw.replace(/\0$/, '').split('\0');
    } catch {
      return undefined;
    }
  },
  kill(pid, signal) {
    process.kill(pid, signal);
  },
};
