import {
  RunEvent,
  type RunRecord,
  RuntimeError,
  Streams,
  Subjects,
  TERMINAL_RUN_STATUSES,
} from "@agent-runtime/contracts";
import type { FastifyReply } from "fastify";
import type { RouteDeps } from "./route-deps.js";
import { runEventView } from "./run-view.js";

/** An SSE connection ends after this long even if the run goes on; clients resume with Last-Event-ID. */
const MAX_STREAM_MS = 15 * 60_000;
/** How long the stream of a finished run waits for its `run-finished` once nothing else is stored. */
const FINISHED_GRACE_MS = 3000;

/** The `Last-Event-ID` header (or `?after=`): the RUN_EVENTS sequence the client saw last. */
export function lastEventIdOf(headers: Record<string, unknown>, query: unknown): number {
  const raw = headers["last-event-id"] ?? (query as { after?: unknown } | undefined)?.after;
  const value = Number(typeof raw === "string" ? raw.trim() : Number.NaN);
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
}

/**
 * Streams a run's events from the RUN_EVENTS stream as SSE (snake_case, see `runEventView`). Each event's `id:` is
 * its stream sequence, so a client that lost the connection resumes exactly after
 * the last event it saw. Ends after `run-finished`.
 */
export async function streamRunEvents(
  deps: RouteDeps,
  reply: FastifyReply,
  options: {
    runId: string;
    after: number;
    /** The run record when already known to be finished (replay, then end). */
    run?: RunRecord;
    headers?: Record<string, string>;
  },
): Promise<FastifyReply> {
  const { runId, after } = options;
  const consumer = await deps.bus
    .readStream(Streams.runEvents, Subjects.runEvents(runId), after)
    .catch((error: unknown) => {
      throw new RuntimeError("unavailable", "run events cannot be read right now; retry shortly", {
        retryAfterMs: 1000,
        cause: error,
      });
    });
  const finishedRun = options.run && TERMINAL_RUN_STATUSES.has(options.run.status) ? options.run : undefined;
  const sse = deps.sse.start(reply, {
    resumable: true,
    ...(options.headers ? { headers: options.headers } : {}),
  });
  if (finishedRun && (await nothingAfter(deps, runId, after))) {
    // nothing (left) to replay for a finished run: after a resume the client is done; if the events
    // have expired it learns the outcome from the run record
    if (after === 0) {
      sse.send(
        runEventView({
          type: "run-finished",
          runId,
          seq: 0,
          ts: Date.parse(finishedRun.finishedAt ?? finishedRun.updatedAt),
          status: finishedRun.status,
          ...(finishedRun.output ? { output: finishedRun.output } : {}),
          usage: finishedRun.usage,
          costUsd: finishedRun.costUsd,
          steps: finishedRun.steps,
          ...(finishedRun.error ? { error: finishedRun.error } : {}),
          ...(finishedRun.threadId ? { threadId: finishedRun.threadId } : {}),
        }),
        { event: "run-finished" },
      );
    }
    await consumer.delete().catch(() => undefined);
    sse.end();
    return reply;
  }
  const messages = await consumer.consume();
  sse.onAbort(() => void messages.close());
  const cap = setTimeout(() => void messages.close(), MAX_STREAM_MS);
  // a finished run's row is written an instant before its run-finished event is stored: once the
  // replay has caught up, the stream waits a little for that event rather than end without it
  let grace: NodeJS.Timeout | undefined;
  const waitForEnd = () => {
    clearTimeout(grace);
    grace = setTimeout(() => void messages.close(), FINISHED_GRACE_MS);
  };
  if (finishedRun) waitForEnd();
  try {
    for await (const message of messages) {
      const parsed = RunEvent.safeParse(jsonOf(message.data));
      if (parsed.success) {
        sse.send(runEventView(parsed.data), { id: message.seq, event: parsed.data.type });
        if (parsed.data.type === "run-finished") break;
      }
      if (finishedRun) waitForEnd();
    }
  } catch {
    // the consumer failed (NATS went away): end the stream, the client resumes with Last-Event-ID
  } finally {
    clearTimeout(cap);
    clearTimeout(grace);
    await messages.close().catch(() => undefined);
    sse.end();
  }
  return reply;
}

/**
 * Whether a finished run's stream has nothing (left) to replay past `after`: its last stored event
 * is its `run-finished` at or before `after`, or nothing is stored (expired). A run whose end is in
 * the store but whose `run-finished` is not yet stored (published an instant after) is replayed.
 */
async function nothingAfter(deps: RouteDeps, runId: string, after: number): Promise<boolean> {
  try {
    const last = await deps.bus.lastStreamMessage(Streams.runEvents, Subjects.runEvents(runId));
    if (!last) return true;
    const event = RunEvent.safeParse(jsonOf(last.data));
    return last.seq <= after && event.success && event.data.type === "run-finished";
  } catch {
    return true;
  }
}

function jsonOf(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
}
