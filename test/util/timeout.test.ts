import { describe, expect, it } from 'vitest';
import { withTimeout } from '../../src/util/timeout.js';

describe('withTimeout', () => {
  it("the promise's value or rejection when it settles first", async () => {
    await expect(withTimeout(Promise.resolve(7), 1000, () => 0)).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error('no')), 1000, () => 0)).rejects.toThrow('no');
  });

  it("late()'s value, or its throw as the rejection, when the promise never settles", async () => {
    const never = new Promise<number>(() => {});
    await expect(withTimeout(never, 10, () => 0)).resolves.toBe(0);
    await expect(
      withTimeout(never, 10, () => {
        throw new Error('late');
      }),
    ).rejects.toThrow('late');
  });
});
