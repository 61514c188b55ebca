import type { Bus } from "@agent-runtime/bus";
import { RuntimeError, runLineage, Subjects } from "@agent-runtime/contracts";
import { z } from "zod";

/** Thrown when a draining worker gives a run back to the queue; another worker resumes it. */
export class RunHandedOff extends RuntimeError {
  constructor(runId: string) {
    super("unavailable", `worker is shutting down; run ${runId} goes to another worker`, {
      retryable: true,
    });
  }
}

/**
 * One subscription per worker for every run's cancel notice (`run.*.cancelled`), instead of a
 * subscribe and an unsubscribe per run: a run registers while this worker holds it.
 */
export class CancelWatch {
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly subscription: { unsubscribe(): void };

  constructor(bus: Bus) {
    this.subscription = bus.subscribe(Subjects.runCancelledAll, z.unknown(), (_notice, subject) => {
      const runId = subject.split(".")[1] ?? "";
      for (const cancel of this.waiting.get(runId) ?? []) cancel();
    });
  }

  /** Calls `cancel` when the run's cancel notice arrives; returns how to stop watching. */
  watch(runId: string, cancel: () => void): () => void {
    let callbacks = this.waiting.get(runId);
    if (!callbacks) {
      callbacks = new Set();
      this.waiting.set(runId, callbacks);
    }
    callbacks.add(cancel);
    return () => {
      callbacks.delete(cancel);
      if (callbacks.size === 0) this.waiting.delete(runId);
    };
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}

/**
 * How a run in progress is stopped. A cancel (`run.<id>.cancelled`) stops it and its in-flight calls
 * at once. A drain (the worker's SIGTERM) lets the step in flight finish, up to a grace time after
 * which its calls are abandoned, and hands the run off at the next step boundary: the recorded
 * steps stay, and another worker resumes from them.
 */
export class RunControl {
  /** Aborts the run's in-flight model and tool calls (one controller: `AbortSignal.any` per run costs more). */
  readonly signal: AbortSignal;
  private readonly stop = new AbortController();
  private wasCancelled = false;
  private readonly unwatch: () => void;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly onDrain = () => {
    this.graceTimer = setTimeout(() => this.stop.abort(new RunHandedOff(this.runId)), this.graceMs);
  };

  constructor(
    cancels: CancelWatch,
    private readonly runId: string,
    private readonly drain: AbortSignal,
    private readonly graceMs: number,
  ) {
    this.signal = this.stop.signal;
    // a cancel of the run or of any run it was delegated from stops it
    const unwatch = runLineage(runId).map((id) =>
      cancels.watch(id, () => {
        this.wasCancelled = true;
        this.stop.abort(new RuntimeError("cancelled", "run was cancelled"));
      }),
    );
    this.unwatch = () => {
      for (const stop of unwatch) stop();
    };
    if (drain.aborted) this.onDrain();
    else drain.addEventListener("abort", this.onDrain, { once: true });
  }

  get cancelled(): boolean {
    return this.wasCancelled;
  }

  get draining(): boolean {
    return this.drain.aborted;
  }

  /** Between steps: throws when the run was cancelled or its worker is draining. */
  readonly checkpoint = (): void => {
    if (this.wasCancelled) throw new RuntimeError("cancelled", "run was cancelled");
    if (this.drain.aborted) throw new RunHandedOff(this.runId);
  };

  close(): void {
    clearTimeout(this.graceTimer);
    this.drain.removeEventListener("abort", this.onDrain);
    this.unwatch();
  }
}
