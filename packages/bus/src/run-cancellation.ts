import { inLineageOf, RuntimeError, Subjects } from "@agent-runtime/contracts";
import type { Subscription } from "@nats-io/nats-core";
import { z } from "zod";
import type { Bus } from "./bus.js";

/**
 * The in-flight work of runs in this process (model calls, tool calls), each piece under its own
 * `AbortController`: a cancelled run's work, and that of the runs delegated from it, is aborted
 * with a `cancelled` error. `listen` follows the runs' `run.<id>.cancelled` notices on the bus.
 */
export class RunCancellation {
  private readonly runs = new Map<string, Set<AbortController>>();

  /** Counts `controller` as work of `runId` until the returned function is called. */
  register(runId: string, controller: AbortController): () => void {
    const work = this.runs.get(runId) ?? new Set<AbortController>();
    work.add(controller);
    this.runs.set(runId, work);
    return () => {
      work.delete(controller);
      if (work.size === 0 && this.runs.get(runId) === work) this.runs.delete(runId);
    };
  }

  /** Aborts the work of `runId` and of the runs delegated from it; returns how many pieces. */
  cancel(runId: string): number {
    let aborted = 0;
    for (const [id, work] of this.runs) {
      if (!inLineageOf(id, runId)) continue;
      for (const controller of work) controller.abort(new RuntimeError("cancelled", "run was cancelled"));
      aborted += work.size;
    }
    return aborted;
  }

  /** Runs with work registered now. */
  get runCount(): number {
    return this.runs.size;
  }

  /** Cancels each run the bus announces cancelled; `onCancelled` hears how much work it aborted. */
  listen(bus: Bus, onCancelled?: (runId: string, aborted: number) => void): Subscription {
    return bus.subscribe(Subjects.runCancelledAll, z.unknown(), (_data, subject) => {
      const runId = subject.split(".")[1] ?? "";
      const aborted = this.cancel(runId);
      onCancelled?.(runId, aborted);
    });
  }
}
