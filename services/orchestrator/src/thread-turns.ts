import type { Bus } from "@agent-runtime/bus";
import {
  type ChatMessage,
  MemoryAppendRequest,
  type RequestMeta,
  type RunRequest,
  retryUntilDeadline,
  Subjects,
  toWireError,
} from "@agent-runtime/contracts";
import type { Logger } from "@agent-runtime/telemetry";

/**
 * Journals a finished turn for its thread: the input and every message of the run's steps go to
 * THREAD_TURNS (one JetStream write, awaited alongside the run's final write), and memory stores
 * them in the thread from there. A later turn of the thread still reads this one: memory takes any
 * turn of the thread it has not stored yet from the stream before it builds a context. Messages are
 * keyed by run and position, and the turn by run id, so journaling again is a no-op. While the bus
 * refuses, it is retried with backoff within the run's deadline; past it the answer still goes out
 * and the turn is missing from the thread (logged).
 */
export async function journalTurn(
  bus: Bus,
  logger: Logger,
  request: RunRequest,
  input: ChatMessage[],
  turn: ChatMessage[],
  meta: RequestMeta,
): Promise<void> {
  if (!request.threadId) return;
  const messages = [...input, ...turn];
  const entry: MemoryAppendRequest = {
    meta,
    threadId: request.threadId,
    agent: request.agent,
    ...(request.userId ? { userId: request.userId } : {}),
    messages: messages.map((message, index) => ({ id: `${request.runId}:${index}`, message })),
  };
  const subject = Subjects.threadTurns(request.tenant, request.threadId);
  try {
    await retryUntilDeadline(
      () =>
        bus.publishDurable(subject, MemoryAppendRequest, entry, {
          msgId: `turn:${request.runId}`,
          timeoutMs: 2000,
        }),
      {
        deadline: meta.deadline,
        baseMs: 50,
        maxMs: 2000,
        isPermanent: (error) => !toWireError(error).retryable,
      },
    );
  } catch (error) {
    logger.error({ err: error, runId: request.runId }, "could not journal the turn for its thread");
  }
}
