import { RunRequest, type RunStatus, Subjects, type WireError } from "@agent-runtime/contracts";
import { z } from "zod";
import type { LoopDeps } from "./run-context.js";
import { EventPublisher, emptyUsage, finishedEventSent } from "./run-events.js";

/** What can be read of a run message that did not parse: enough to tell its client. */
const RunAddress = z.object({
  runId: z.string().min(1).max(300),
  threadId: z.string().optional(),
  notify: RunRequest.shape.notify,
});

/**
 * A run message given up on (invalid, or failing on every delivery) still ends its run: the run is
 * journaled as failed unless it already ended, and its `run-finished` goes out when this is what
 * ended it, so no client waits for its own timeout. Safe to run twice.
 */
export async function failDeadLetteredRun(
  deps: LoopDeps,
  request: RunRequest | undefined,
  reason: string,
  payload: string,
): Promise<void> {
  const error: WireError = {
    code: request ? "internal" : "validation",
    message: request ? `the run could not be processed: ${reason}` : `invalid run message: ${reason}`,
    retryable: false,
  };
  let address: z.infer<typeof RunAddress> | undefined = request;
  if (!address) {
    try {
      address = RunAddress.parse(JSON.parse(payload));
    } catch {
      return; // nobody can be told: the dead letter keeps the message
    }
  }
  let status: RunStatus = "failed";
  let announce = true;
  if (request) {
    const token = `dead-letter:${request.runId}`;
    try {
      const written = await deps.journal.write({
        run: {
          request,
          status: "failed",
          attempt: 1,
          startedAt: Date.now(),
          steps: 0,
          usage: emptyUsage(),
          costUsd: 0,
          error,
        },
        finishToken: token,
        scrub: true,
        // the message is acknowledged right after this hook
        durable: true,
      });
      status = written.status;
      // ended earlier by its worker: that worker told the client
      announce = written.finishedBy === token;
    } catch (cause) {
      deps.logger.error({ err: cause, runId: request.runId }, "could not journal a dead-lettered run");
    }
  }
  // told already (a run whose end could not be journaled tells its client before it is handed back)
  if (!announce || (await finishedEventSent(deps.bus, address.runId))) return;
  new EventPublisher(
    deps.bus,
    address.runId,
    1,
    undefined,
    address.notify ?? Subjects.runEvents(address.runId),
  ).emit({
    type: "run-finished",
    status,
    usage: emptyUsage(),
    costUsd: 0,
    steps: 0,
    error,
    ...(address.threadId ? { threadId: address.threadId } : {}),
  });
}
