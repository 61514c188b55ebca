import { RunHandedOff } from "./run-control.js";

interface Waiter {
  since: number;
  wake: () => void;
}

/**
 * Batch runs yield to interactive ones in this worker: while an interactive run is in progress,
 * at most `whileBusy` batch runs are in progress too (0 by default: batch runs start in the gaps
 * between interactive ones); when none is, up to `max`. So that steady chat never starves batch
 * work, once the oldest waiting batch run has waited `maxYieldMs`, batch runs may go on one at a
 * time (or `whileBusy`, if more) beside interactive ones until the queue is served. Provider and
 * tool slots are shared by lane further down (model proxy, tool executor); this share is of the
 * worker's own CPU and of everything a run keeps busy. A batch run already going is never paused
 * mid-step: it is the next batch run that waits.
 */
export class BatchGate {
  private interactive = 0;
  private batch = 0;
  private waiters: Waiter[] = [];
  private starvationTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly max: number,
    private readonly whileBusy: number,
    private readonly maxYieldMs = 5000,
  ) {}

  /** Counts an interactive run for as long as it lasts; call the result when it ends. */
  interactiveRun(): () => void {
    this.interactive++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.interactive--;
      this.wake();
    };
  }

  /** Waits for a batch slot (or throws `RunHandedOff` when the worker drains meanwhile). */
  async batchRun(runId: string, signal: AbortSignal): Promise<() => void> {
    const since = Date.now();
    while (this.batch >= this.limit(since)) {
      if (signal.aborted) throw new RunHandedOff(runId);
      await new Promise<void>((resolve) => {
        const waiter: Waiter = {
          since,
          wake: () => {
            signal.removeEventListener("abort", waiter.wake);
            resolve();
          },
        };
        // oldest first: `limit` looks at the head, which has waited longest
        const at = this.waiters.findIndex((other) => other.since > since);
        if (at < 0) this.waiters.push(waiter);
        else this.waiters.splice(at, 0, waiter);
        signal.addEventListener("abort", waiter.wake, { once: true });
        this.armStarvationTimer();
      });
    }
    this.batch++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.batch--;
      this.wake();
    };
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Batch runs allowed in progress, for a run waiting since `since`. */
  private limit(since: number): number {
    if (this.interactive === 0) return this.max;
    const oldest = Math.min(since, this.waiters[0]?.since ?? since);
    return Date.now() - oldest >= this.maxYieldMs ? Math.max(this.whileBusy, 1) : this.whileBusy;
  }

  /** Wakes the waiters when the oldest one reaches `maxYieldMs`, as nothing else may happen by then. */
  private armStarvationTimer(): void {
    const oldest = this.waiters[0];
    if (!oldest || this.starvationTimer) return;
    const due = Math.max(0, oldest.since + this.maxYieldMs - Date.now());
    this.starvationTimer = setTimeout(() => {
      this.starvationTimer = undefined;
      this.wake();
    }, due);
    this.starvationTimer.unref();
  }

  private wake(): void {
    if (this.starvationTimer) {
      clearTimeout(this.starvationTimer);
      this.starvationTimer = undefined;
    }
    for (const waiter of this.waiters.splice(0)) waiter.wake();
  }
}
