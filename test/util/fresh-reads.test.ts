import { describe, expect, it } from 'vitest';
import { FreshReads } from '../../src/util/fresh-reads.js';

/** A read the test finishes by hand; `started` counts the reads begun. */
function manual() {
  const ends: ((v: string) => void)[] = [];
  let started = 0;
  return {
    fn: () =>
      new Promise<string>((resolve) => {
        started++;
        ends.push(resolve);
      }),
    get started() {
      return started;
    },
    end: (i: number, v: string) => ends[i]!(v),
  };
}
const turn = () => new Promise((r) => setImmediate(r));

describe('FreshReads', () => {
  it('callers asking in the same turn share one read', async () => {
    const r = new FreshReads<string>();
    const m = manual();
    const asks = [1, 2, 3].map(() => r.read('k', m.fn));
    await turn();
    expect(m.started).toBe(1);
    m.end(0, 'a');
    expect(await Promise.all(asks)).toEqual(['a', 'a', 'a']);
  });
  it('an ask while a read runs waits for the next read, which all later askers share', async () => {
    const r = new FreshReads<string>();
    const m = manual();
    const first = r.read('k', m.fn);
    await turn();
    const late = [r.read('k', m.fn), r.read('k', m.fn)];
    await turn();
    expect(m.started).toBe(1); // the next read waits for the running one
    m.end(0, 'old');
    expect(await first).toBe('old');
    await turn();
    expect(m.started).toBe(2);
    m.end(1, 'new');
    expect(await Promise.all(late)).toEqual(['new', 'new']);
  });
  it('keys are independent; a failed read fails its askers and the next ask reads again', async () => {
    const r = new FreshReads<string>();
    let n = 0;
    await expect(r.read('a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await r.read('a', async () => `a${++n}`)).toBe('a1');
    expect(await r.read('b', async () => `b${++n}`)).toBe('b2');
    expect(await r.read('a', async () => `a${++n}`)).toBe('a3'); // done reads are not reused
  });
});
