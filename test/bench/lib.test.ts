/** The bench harness's arithmetic: medians, targets, ratios and the table (no I/O). */
import { describe, expect, it } from 'vitest';
import { epochSpanMs, percentile, row, stats, table, timedRun } from './lib.js';

const ms = (key: string, xs: number[]) => ({ key, what: key, unit: 'ms' as const, xs });

describe('bench lib', () => {
  it('median, min and max of odd and even sample counts', () => {
    expect(stats([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, n: 3 });
    expect(stats([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, n: 4 });
    expect(stats([]).n).toBe(0);
  });

  it('the shell timer: span of $EPOCHREALTIME stamps, exit code, output and stdin passed through', async () => {
    expect(epochSpanMs('1764270000.999500', '1764270001.001750')).toBeCloseTo(2.25, 6);
    const r = await timedRun(['sh', '-c', 'cat; echo oops >&2; sleep 0.05; exit 3'], { input: 'in' });
    expect(r).toMatchObject({ code: 3, stdout: 'in', stderr: 'oops\n' });
    expect(r.ms).toBeGreaterThanOrEqual(50);
    expect(r.ms).toBeLessThan(5000);
  });

  it('percentile picks from the sorted list', () => {
    expect(percentile([9, 1, 5, 3, 7], 50)).toBe(5);
    expect(percentile([9, 1, 5, 3, 7], 100)).toBe(9);
  });

  it('an absolute target is judged on the median', () => {
    expect(row('s', ms('a', [90, 120, 95]), { op: 'le', value: 100, on: 'abs' }).met).toBe(true);
    expect(row('s', ms('a', [110, 120, 95]), { op: 'le', value: 100, on: 'abs' }).met).toBe(false);
    expect(
      row(
        's',
        { key: 'r', what: 'r', unit: 'calls/s', xs: [1900, 2100, 2200] },
        { op: 'ge', value: 2000, on: 'abs' },
      ).met,
    ).toBe(true);
  });

  it('ratio and speed-up targets compare medians of the same run', () => {
    const start = row(
      's',
      ms('v', [100, 90, 110]),
      { op: 'le', value: 0.25, on: 'ratio' },
      { label: 'libvirt', s: ms('l', [400, 420, 380]) },
    );
    expect(start.other?.ratio).toBeCloseTo(0.25);
    expect(start.met).toBe(true);
    const slow = row(
      's',
      ms('v', [120]),
      { op: 'le', value: 0.25, on: 'ratio' },
      { label: 'libvirt', s: ms('l', [400]) },
    );
    expect(slow.met).toBe(false);
    const add = row(
      's',
      ms('v', [20]),
      { op: 'ge', value: 50, on: 'speedup' },
      { label: 'libvirt', s: ms('l', [600]) },
    );
    expect(add.met).toBe(false); // 30× faster
    const add2 = row(
      's',
      ms('v', [5]),
      { op: 'ge', value: 50, on: 'speedup' },
      { label: 'libvirt', s: ms('l', [600]) },
    );
    expect(add2.met).toBe(true); // 120× faster
  });

  it('a comparison target without the other side is not judged', () => {
    expect(row('s', ms('v', [20]), { op: 'ge', value: 50, on: 'speedup' }).met).toBeUndefined();
  });

  it('the table shows every row under its section with the verdict', () => {
    const t = table([
      row('engine', ms('start', [90, 95, 99]), { op: 'le', value: 100, on: 'abs' }),
      row('engine', ms('stop', [81]), { op: 'le', value: 80, on: 'abs' }),
      row('fw', ms('tx', [10]), undefined, { label: 'per rule', s: ms('c', [200]) }),
    ]);
    const lines = t.split('\n');
    expect(lines[2]).toBe('[engine]');
    expect(lines[3]).toMatch(/^start .*\|\s+95 ms .*≤ 100 ms\s*\| yes$/);
    expect(lines[4]).toMatch(/^stop .*≤ 80 ms\s*\| NO$/);
    expect(lines[5]).toBe('[fw]');
    expect(lines[6]).toContain('per rule 200 ms');
    expect(lines[6]).toContain('0.050× (20.0× faster)');
  });
});
