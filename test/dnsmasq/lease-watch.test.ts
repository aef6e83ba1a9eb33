import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeaseFileWatcher } from '../../src/dnsmasq/lease-watch.js';
import type { LeaseChange } from '../../src/dnsmasq/leases.js';
import { writeFileAtomic } from '../../src/util/atomic-write.js';

let dir: string;
let w: LeaseFileWatcher | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lease-watch-'));
});
afterEach(() => {
  w?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const waitFor = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('LeaseFileWatcher', () => {
  it('emits added / updated / deleted as the file changes (in place or replaced), nothing for the start state', async () => {
    const file = join(dir, 'net.leases');
    writeFileSync(file, '100 52:54:00:00:00:01 10.0.0.1 a *\n');
    w = new LeaseFileWatcher(file, 10);
    const got: LeaseChange[] = [];
    w.on('lease-changed', (c) => got.push(c));
    await w.start();
    expect(w.leases.map((l) => l.ip)).toEqual(['10.0.0.1']);

    appendFileSync(file, '100 52:54:00:00:00:02 10.0.0.2 b *\n'); // in place, like dnsmasq
    await waitFor(() => got.length === 1);
    expect(got[0]).toEqual({ event: 'added', mac: '52:54:00:00:00:02', ip: '10.0.0.2', hostname: 'b' });

    await writeFileAtomic(file, '200 52:54:00:00:00:01 10.0.0.1 a *\n'); // renew .1, drop .2
    await waitFor(() => got.length === 3);
    expect(got.slice(1)).toEqual([
      { event: 'updated', mac: '52:54:00:00:00:01', ip: '10.0.0.1', hostname: 'a' },
      { event: 'deleted', mac: '52:54:00:00:00:02', ip: '10.0.0.2', hostname: 'b' },
    ]);

    // other files in the directory do not trigger reads that emit anything
    writeFileSync(join(dir, 'other'), 'x');
    await new Promise((r) => setTimeout(r, 60));
    expect(got).toHaveLength(3);

    w.stop();
    writeFileSync(file, '');
    await new Promise((r) => setTimeout(r, 60));
    expect(got).toHaveLength(3);
  });

  it('starts on a missing file and sees it appear', async () => {
    const file = join(dir, 'late.leases');
    w = new LeaseFileWatcher(file, 10);
    const got: LeaseChange[] = [];
    w.on('lease-changed', (c) => got.push(c));
    await w.start();
    expect(w.leases).toEqual([]);
    writeFileSync(file, '0 52:54:00:00:00:09 10.0.0.9 * *\n');
    await waitFor(() => got.length === 1);
    expect(got[0]!.event).toBe('added');
  });
});
