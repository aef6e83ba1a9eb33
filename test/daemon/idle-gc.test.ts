import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdleGc } from '../../src/daemon/idle-gc.js';

describe('IdleGc', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('collects once, idleMs after the last of a burst of changes', () => {
    vi.useFakeTimers();
    let runs = 0;
    const g = new IdleGc(() => runs++, 1000);
    for (let i = 0; i < 5; i++) {
      g.poke();
      vi.advanceTimersByTime(600); // each change comes before the previous one's idle time is up
    }
    expect(runs).toBe(0);
    vi.advanceTimersByTime(400);
    expect(runs).toBe(1);
    vi.advanceTimersByTime(10_000);
    expect(runs).toBe(1); // idle: nothing more
    g.poke();
    vi.advanceTimersByTime(1000);
    expect(runs).toBe(2);
  });

  it('does nothing without a gc function (node started without --expose-gc), and stop() cancels', () => {
    vi.useFakeTimers();
    expect(() => new IdleGc(undefined).poke()).not.toThrow();
    let runs = 0;
    const g = new IdleGc(() => runs++, 1000);
    g.poke();
    g.stop();
    vi.advanceTimersByTime(5000);
    expect(runs).toBe(0);
  });
});
