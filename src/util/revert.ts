/**
 * One rollback for a multi-step change (as Incus's `revert`): each step registers how to take itself
 * back with `add(undo)` — before or right after it changes anything — and the caller ends with
 * either `success()` (the change stands: the undos are dropped) or `fail()` (the undos run in reverse
 * order of registration, each tried even when an earlier one failed).
 */

export interface RevertFailure {
  /** The label the undo was added with. */
  step: string;
  error: unknown;
}

export class Revert {
  private undos: { step: string; run: () => Promise<void> | void }[] = [];
  private done = false;

  /** Register how to take back a step. `step` names it in the failures `fail()` returns. */
  add(step: string, undo: () => Promise<void> | void): void {
    if (this.done) throw new Error(`revert: '${step}' added after success() or fail()`);
    this.undos.push({ step, run: undo });
  }

  /** The change stands: nothing will be undone. */
  success(): void {
    this.done = true;
    this.undos = [];
  }

  /**
   * Take everything back, last step first. Resolves with the undos that failed (an undo's failure
   * does not stop the others); a second call does nothing.
   */
  async fail(): Promise<RevertFailure[]> {
    if (this.done) return [];
    this.done = true;
    const undos = this.undos.reverse();
    this.undos = [];
    const failures: RevertFailure[] = [];
    for (const u of undos) {
      try {
        await u.run();
      } catch (error) {
        failures.push({ step: u.step, error });
      }
    }
    return failures;
  }
}
