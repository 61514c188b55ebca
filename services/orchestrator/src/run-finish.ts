import { randomUUID } from "node:crypto";
import {
  type AssistantMessage,
  type RunFinishedEvent,
  type RunRequest,
  type RunStatus,
  RuntimeError,
  toWireError,
  type WireError,
} from "@agent-runtime/contracts";
import type { JournalEntry, RunState, Written } from "./journal.js";
import type { FinishRun, LoopDeps } from "./run-context.js";
import type { EventPublisher } from "./run-events.js";
import { finishedEventSent } from "./run-events.js";
import { announceStored, type BegunRun, runDeadline } from "./run-start.js";

/** The run's row as this worker knows it, for a given end. */
export type RunRow = (status: RunStatus, output?: AssistantMessage, error?: WireError) => RunState;

/**
 * How a run ends, once: the final step and the finished state are one journal write (waited for
 * through store outages up to the run's deadline), then `run-finished` goes out, from the worker
 * whose write ended the run. What the store refuses to hold fails the run with that reason; a
 * journal unreachable to the deadline tells the client at once and hands the run back
 * (`RunNotRecorded`) so a later delivery records how it ended.
 */
export function runFinisher(
  deps: LoopDeps,
  request: RunRequest,
  begun: BegunRun,
  events: EventPublisher,
  row: RunRow,
  /** The models this worker's steps of the run were answered by. */
  models: ReadonlySet<string> = new Set(),
): FinishRun {
  const finishToken = `${begun.attempt}:${randomUUID()}`;
  const thread = request.threadId ? { threadId: request.threadId } : {};
  return async (status, output, error, finishReason, persisted, finalStep) => {
    let written: Written;
    try {
      const entry: JournalEntry = {
        run: row(status, output, error),
        finishToken,
        ...(finalStep ? { step: finalStep } : {}),
      };
      begun.superseded();
      [written] = await Promise.all([deps.journal.writeDurably(entry, runDeadline(request)), persisted]);
    } catch (cause) {
      const wire = toWireError(cause);
      const totals = row(status);
      if (wire.code !== "validation") {
        events.emit({
          type: "run-finished",
          status: "failed",
          usage: totals.usage,
          costUsd: totals.costUsd,
          steps: totals.steps,
          error: wire,
          ...thread,
        });
        throw new RunNotRecorded(request.runId, cause);
      }
      // what the run produced cannot be stored: it fails with that reason, and its row says so
      status = "failed";
      output = undefined;
      finishReason = undefined;
      error = wire;
      written = await deps.journal
        .writeDurably({ run: row(status, undefined, wire), scrub: true, finishToken }, runDeadline(request))
        .catch((again: unknown) => {
          deps.logger.error({ err: again, runId: request.runId }, "could not record a failed run");
          return { status, finishedBy: finishToken };
        });
    }
    deps.failpoint("after-final-write");
    const final = written.status;
    if (written.finishedBy !== finishToken && final !== "cancelled") {
      // another worker holding the same run (a redelivery racing this one) ended it: it announces
      // the outcome, unless it never got to (then the stored outcome goes out, once)
      deps.logger.info({ runId: request.runId, status: final }, "run already ended by another worker");
      if (!(await finishedEventSent(deps.bus, request.runId)))
        await announceStored(deps, request, begun.attempt);
      return final;
    }
    const totals = row(final);
    const event: Omit<RunFinishedEvent, "runId" | "seq" | "ts"> = {
      type: "run-finished",
      status: final,
      ...(output && final === status ? { output } : {}),
      ...(finishReason && final === status ? { finishReason } : {}),
      usage: totals.usage,
      costUsd: totals.costUsd,
      steps: totals.steps,
      ...(final !== status
        ? { error: { code: "cancelled", message: "run was cancelled", retryable: false } }
        : error
          ? { error }
          : {}),
      ...thread,
    };
    events.emit(event);
    // written once the event has gone out (the log line is not on the client's path)
    setImmediate(() => logTurn(deps, request, begun, { ...event, models }));
    return final;
  };
}

/**
 * The one info line of a turn, from the worker that announced its end: who, which agent and
 * models, tokens, cost, time since the run first started, and how it ended (with the trace id of
 * the run's span, as every line in a span has).
 */
function logTurn(
  deps: LoopDeps,
  request: RunRequest,
  begun: BegunRun,
  end: Omit<RunFinishedEvent, "runId" | "seq" | "ts"> & { models: ReadonlySet<string> },
): void {
  deps.logger.info(
    {
      runId: request.runId,
      tenant: request.tenant,
      agent: request.agent,
      ...(request.userId ? { userId: request.userId } : {}),
      lane: request.priority,
      status: end.status,
      ...(end.error ? { error: end.error.code } : {}),
      models: [...end.models],
      steps: end.steps,
      promptTokens: end.usage.promptTokens,
      cachedTokens: end.usage.cachedTokens,
      completionTokens: end.usage.completionTokens,
      costUsd: Number(end.costUsd.toFixed(6)),
      latencyMs: Date.now() - begun.startedAt,
      ...(begun.attempt > 1 ? { attempt: begun.attempt } : {}),
    },
    "turn finished",
  );
}

/** A run's end could not be journaled before its deadline (its client has been told it failed). */
export class RunNotRecorded extends RuntimeError {
  constructor(runId: string, cause: unknown) {
    super("unavailable", `the end of run ${runId} could not be journaled; a later delivery records it`, {
      retryable: true,
      retryAfterMs: 5000,
      cause,
    });
  }
}
