import type { RunRequest, RunStatus } from "@agent-runtime/contracts";
import type { LoopDeps, RunOptions } from "./agent-loop.js";
import { EventPublisher, emptyUsage, finishedEventSent } from "./run-events.js";
import type { RunStore } from "./run-store.js";

export type BegunRun = Awaited<ReturnType<RunStore["begin"]>>;

/**
 * Takes a delivered run: creates it, or takes it over with its recorded steps. A run that is
 * already over (finished before a crash, or cancelled while queued) is not run again; its outcome
 * is announced only if the client never heard it.
 */
export async function takeRun(
  deps: LoopDeps,
  request: RunRequest,
  options: RunOptions,
): Promise<{ begun: BegunRun } | { done: RunStatus }> {
  const { bus, store } = deps;
  let begun: BegunRun;
  try {
    begun = await store.begin(request);
  } catch (error) {
    // without its state store a run cannot be resumed safely: a batch run waits and retries,
    // an interactive one fails fast with a clear error instead of leaving the client waiting
    if (request.priority === "batch" || options.signal.aborted) throw error;
    deps.logger.error({ err: error, runId: request.runId }, "run state store unavailable");
    new EventPublisher(bus, request.runId, options.deliveryCount).emit({
      type: "run-finished",
      status: "failed",
      usage: emptyUsage(),
      costUsd: 0,
      steps: 0,
      error: {
        code: "unavailable",
        message: "the run state store is unavailable; retry shortly",
        retryable: true,
      },
      ...(request.threadId ? { threadId: request.threadId } : {}),
    });
    return { done: "failed" };
  }
  if (begun.status === "running" || begun.status === "queued") return { begun };
  if (!(await finishedEventSent(bus, request.runId))) {
    const record = await store.get(request.tenant, request.runId);
    new EventPublisher(bus, request.runId, begun.attempt).emit({
      type: "run-finished",
      status: begun.status,
      ...(record?.output ? { output: record.output } : {}),
      usage: record?.usage ?? emptyUsage(),
      costUsd: record?.costUsd ?? 0,
      steps: record?.steps ?? 0,
      ...(record?.error ? { error: record.error } : {}),
      ...(request.threadId ? { threadId: request.threadId } : {}),
    });
  }
  return { done: begun.status };
}
