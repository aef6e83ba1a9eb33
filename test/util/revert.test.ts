import { describe, expect, it } from 'vitest';
import { Revert } from '../../src/util/revert.js';

describe('Revert', () => {
  it('fail() runs the undos in reverse order, each even when an earlier one failed', async () => {
    const r = new Revert();
    const ran: string[] = [];
    r.add('a', () => {
      ran.push('a');
    });
    r.add('b', async () => {
      ran.push('b');
      throw new Error('b broke');
    });
    r.add('c', async () => {
      ran.push('c');
    });
    const failures = await r.fail();
    expect(ran).toEqual(['c', 'b', 'a']);
    expect(failures.map((f) => [f.step, (f.error as Error).message])).toEqual([['b', 'b broke']]);
    expect(await r.fail()).toEqual([]);
    expect(ran).toEqual(['c', 'b', 'a']);
  });

  it('success() drops the undos; nothing can be added afterwards', async () => {
    const r = new Revert();
    let ran = false;
    r.add('a', () => {
      ran = true;
    });
    r.success();
    expect(await r.fail()).toEqual([]);
    expect(ran).toBe(false);
    expect(() => r.add('late', () => {})).toThrow("revert: 'late' added after success() or fail()");
  });
});
