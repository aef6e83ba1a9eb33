/**
 * One full garbage collection once the daemon is idle after a change (a network started or stopped,
 * a definition written, a hook call handled), so its RSS goes back near what it really holds.
 *
 * Why: a resident daemon that then sits idle never reaches V8's next collection threshold, so the
 * garbage of a burst (100 networks started: buffers of 300 commands, rendered configs, parsed XML)
 * stays in the heap for good (the RSS difference is in the README's Numbers). V8 only
 * offers this with `--expose-gc` (virtnetd's shebang sets it); without it this does nothing.
 */
export type GcFn = () => void;

export class IdleGc {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly gc: GcFn | undefined = (globalThis as { gc?: GcFn }).gc,
    private readonly idleMs = 1000,
  ) {}

  /** Something changed: collect once nothing else happened for idleMs. */
  readonly poke = (): void => {
    if (!this.gc) return;
    if (this.timer) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.gc?.();
    }, this.idleMs);
    this.timer.unref();
  };

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
