import type { RunRequest, RunStatus } from "@agent-runtime/contracts";
import { type RunState, retryTransient } from "./journal.js";
import type { LoopDeps, RunOptions } from "./run-context.js";
import { EventPublisher, emptyUsage, finishedEventSent } from "./run-events.js";
import type { RecordedStep } from "./run-store.js";

export interface BegunRun {
  status: RunStatus;
  attempt: number;
  startedAt: number;
  steps: RecordedStep[];
  /** Resolves once the run's row exists (written now if it was deferred). */
  recorded(): Promise<void>;
  /** A later entry writes the whole row: a deferred start write is no longer needed. */
  superseded(): void;
}

/**
 * How long a fresh run may go before its start is journaled on its own. A turn that ends sooner
 * (most chat turns) writes its row once, with its end; a longer one becomes visible (listed,
 * cancellable) after this delay.
 */
export const START_WRITE_DELAY_MS = 100;

/** How long past its deadline the failure of a run that could not reach its store is still written. */
const ABANDONED_WRITE_GRACE_MS = 60_000;

/**
 * Whether a delivered run can start without reading the store first: a chat turn (or an inline
 * child run) on its first delivery has no row, no steps and cannot have been cancelled while
 * queued, so its start is journaled in the background and the model is asked at once.
 */
function startsFresh(request: RunRequest, options: RunOptions): boolean {
  return options.deliveryCount === 1 && (request.source === "chat" || request.source === "delegate");
}

/**
 * Takes a delivered run: creates it, or takes it over with its recorded steps. A run that is
 * already over (finished before a crash, or cancelled while queued) is not run again; its outcome
 * is announced only if the client never heard it. The store is asked again with backoff while it
 * is unreachable, for as long as the run's deadline allows.
 */
export async function takeRun(
  deps: LoopDeps,
  request: RunRequest,
  options: RunOptions,
): Promise<{ begun: BegunRun } | { done: RunStatus }> {
  const { bus, store } = deps;
  if (startsFresh(request, options)) {
    const startedAt = Date.now();
    const state: RunState = {
      request,
      status: "running",
      attempt: 1,
      startedAt,
      steps: 0,
      usage: emptyUsage(),
      costUsd: 0,
    };
    let written: Promise<void> | undefined;
    const write = () => {
      clearTimeout(timer);
      written ??= deps.journal.write({ run: state }).then(
        () => undefined,
        (error: unknown) => {
          // the run's later entries write the whole row again; this one only made it visible sooner
          deps.logger.warn({ err: error, runId: request.runId }, "could not journal a run's start");
        },
      );
      return written;
    };
    const timer = setTimeout(write, START_WRITE_DELAY_MS);
    return {
      begun: {
        status: "running",
        attempt: 1,
        startedAt,
        steps: [],
        recorded: write,
        superseded: () => clearTimeout(timer),
      },
    };
  }
  let begun: Omit<BegunRun, "recorded" | "superseded">;
  try {
    begun = await retryTransient(() => store.begin(request), runDeadline(request), options.signal);
  } catch (error) {
    // without its state store a run cannot be resumed safely: a batch run waits and retries,
    // an interactive one ends with a clear error instead of leaving the client waiting
    if (request.priority === "batch" || options.signal.aborted) throw error;
    deps.logger.error({ err: error, runId: request.runId }, "run state store unavailable");
    const failure = {
      code: "unavailable",
      message: "the run state store is unavailable; retry shortly",
      retryable: true,
    } as const;
    EventPublisher.forRun(bus, request, options.deliveryCount).emit({
      type: "run-finished",
      status: "failed",
      usage: emptyUsage(),
      costUsd: 0,
      steps: 0,
      error: failure,
      ...(request.threadId ? { threadId: request.threadId } : {}),
    });
    // its client has heard; its row says so too once the store is back (waited for up to a minute
    // past the deadline while the message is held), so the run never stays `running`
    await deps.journal
      .writeDurably(
        {
          run: {
            request,
            status: "failed",
            attempt: options.deliveryCount,
            startedAt: Date.now(),
            steps: 0,
            usage: emptyUsage(),
            costUsd: 0,
            error: failure,
          },
          finishToken: `unavailable:${request.runId}:${options.deliveryCount}`,
        },
        runDeadline(request) + ABANDONED_WRITE_GRACE_MS,
        options.signal,
      )
      .catch((cause: unknown) =>
        deps.logger.error(
          { err: cause, runId: request.runId },
          "could not record a run failed for its store",
        ),
      );
    return { done: "failed" };
  }
  if (begun.status === "running" || begun.status === "queued")
    return { begun: { ...begun, recorded: () => Promise.resolve(), superseded: () => undefined } };
  if (!(await finishedEventSent(bus, request.runId))) await announceStored(deps, request, begun.attempt);
  return { done: begun.status };
}

/** Announces a finished run's outcome as the store holds it (for a client that never heard it). */
export async function announceStored(deps: LoopDeps, request: RunRequest, attempt: number): Promise<void> {
  const record = await deps.store.get(request.tenant, request.runId);
  if (!record) return;
  EventPublisher.forRun(deps.bus, request, attempt).emit({
    type: "run-finished",
    status: record.status,
    ...(record.output ? { output: record.output } : {}),
    usage: record.usage,
    costUsd: record.costUsd,
    steps: record.steps,
    ...(record.error ? { error: record.error } : {}),
    ...(request.threadId ? { threadId: request.threadId } : {}),
  });
}

/** How long the store is waited for on a run's behalf: its deadline, and a few seconds past one already gone. */
export function runDeadline(request: RunRequest): number {
  return Math.max(request.deadline, Date.now() + 5000);
}
