import { RunHandedOff } from "./run-control.js";

/**
 * Batch runs yield to interactive ones in this worker: while an interactive run is in progress,
 * at most `whileBusy` batch runs are in progress too; when none is, up to `max`. Provider and tool
 * slots are shared by lane further down (model proxy, tool executor); this share is of the
 * worker's own CPU and of everything a run keeps busy. A batch run already going is never paused
 * mid-step: it is the next batch run that waits.
 */
export class BatchGate {
  private interactive = 0;
  private batch = 0;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly max: number,
    private readonly whileBusy: number,
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
    while (this.batch >= this.limit()) {
      if (signal.aborted) throw new RunHandedOff(runId);
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.waiters.push(done);
        signal.addEventListener("abort", done, { once: true });
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

  private limit(): number {
    return this.interactive > 0 ? this.whileBusy : this.max;
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}
