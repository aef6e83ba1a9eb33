import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isDnsmasqWithConf, parsePidFile, parseProcStat, realProbe } from '../../src/dnsmasq/proc.js';

describe('parseProcStat', () => {
  it('reads state, ppid and start time, even when comm has spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = 'S';
    fields[1] = '77';
    fields[19] = '123456';
    const text = `4242 (a) (b c) ${fields.join(' ')}\n`;
    expect(parseProcStat(text)).toEqual({ state: 'S', ppid: 77, startTime: 123456 });
  });
  it('reads our own /proc/self/stat', () => {
    const st = realProbe.stat(process.pid);
    expect(st?.state).toMatch(/^[RS]$/);
    expect(st?.ppid).toBe(process.ppid);
    expect(st!.startTime).toBeGreaterThan(0);
  });
  it('rejects garbage', () => {
    expect(parseProcStat('nonsense')).toBeUndefined();
  });
  it('the real probe reads the same as a plain read, for many processes in a row, and undefined when gone', () => {
    for (const pid of [process.pid, process.ppid, 1, process.pid]) {
      expect(realProbe.stat(pid)).toEqual(parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    }
    expect(realProbe.stat(4194304)).toBeUndefined();
  });
});

describe('parsePidFile', () => {
  it('accepts a pid with a newline, refuses anything else', () => {
    expect(parsePidFile('1234\n')).toBe(1234);
    expect(parsePidFile('')).toBeUndefined();
    expect(parsePidFile('0')).toBeUndefined();
    expect(parsePidFile('12 34')).toBeUndefined();
    expect(parsePidFile('-5')).toBeUndefined();
    expect(parsePidFile('99999999999')).toBeUndefined();
  });
});

describe('isDnsmasqWithConf', () => {
  const conf = '/run/virtnet/default.conf';
  it('matches every spelling of the conf-file option', () => {
    expect(isDnsmasqWithConf(['dnsmasq', `--conf-file=${conf}`], conf)).toBe(true);
    expect(isDnsmasqWithConf(['/usr/sbin/dnsmasq', '--conf-file', conf], conf)).toBe(true);
    expect(isDnsmasqWithConf(['dnsmasq', '-C', conf], conf)).toBe(true);
    expect(isDnsmasqWithConf(['dnsmasq', `-C${conf}`], conf)).toBe(true);
    expect(isDnsmasqWithConf(['dnsmasq', '--conf-file=/run/virtnet/../virtnet/default.conf'], conf)).toBe(
      true,
    );
  });
  it('refuses another program, another conf, or no conf', () => {
    expect(isDnsmasqWithConf(['sleep', `--conf-file=${conf}`], conf)).toBe(false);
    expect(isDnsmasqWithConf(['dnsmasq', '--conf-file=/run/virtnet/other.conf'], conf)).toBe(false);
    expect(isDnsmasqWithConf(['dnsmasq'], conf)).toBe(false);
    expect(isDnsmasqWithConf([], conf)).toBe(false);
    expect(isDnsmasqWithConf(['dnsmasq', '--conf-file'], conf)).toBe(false);
  });
});
