/**
 * Reads of the same thing asked for at about the same time, shared — and never older than the ask.
 * A caller joins the read that has been asked for but not started yet; when a read of that key is
 * running (it started before this ask, so its answer may be stale), the caller queues the next one,
 * which starts when the running one ends. So however many ask at once, at most two reads of a key are
 * under way (one running, one waiting), and every answer was read after it was asked for.
 */
export class FreshReads<T> {
  private readonly running = new Map<string, Promise<T>>();
  private readonly queued = new Map<string, Promise<T>>();

  read(key: string, fn: () => Promise<T>): Promise<T> {
    const waiting = this.queued.get(key);
    if (waiting) return waiting;
    const before = this.running.get(key);
    const next = (before ? before.then(noop, noop) : Promise.resolve()).then(() => {
      if (this.queued.get(key) === next) this.queued.delete(key);
      const p = fn();
      this.running.set(key, p);
      const forget = () => {
        if (this.running.get(key) === p) this.running.delete(key);
      };
      p.then(forget, forget);
      return p;
    });
    // Callers that ask before it starts (in this turn, or while `before` runs) join it.
    this.queued.set(key, next);
    return next;
  }
}

function noop(): void {}
