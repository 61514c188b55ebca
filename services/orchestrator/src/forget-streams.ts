import type { Bus, StreamName } from "@agent-runtime/bus";
import { DeadLetter, RuntimeError, Streams, Subjects } from "@agent-runtime/contracts";
import { z } from "zod";

/** Longest a scan of one stream may take before the forget is answered `unavailable` (retried). */
const SCAN_LIMIT_MS = 15_000;

/** Whose a message is: the fields of a run request, a thread turn or a request's meta. */
const Owned = z.looseObject({
  tenant: z.string().optional(),
  runId: z.string().optional(),
  parentRunId: z.string().optional(),
  threadId: z.string().optional(),
  userId: z.string().optional(),
  meta: z
    .looseObject({
      tenant: z.string().optional(),
      runId: z.string().optional(),
      threadId: z.string().optional(),
      userId: z.string().optional(),
    })
    .optional(),
});

/** What is being forgotten, to recognise a message of it. */
export interface ForgetTarget {
  tenant: string;
  threadIds: ReadonlySet<string>;
  userId?: string | undefined;
  runIds: ReadonlySet<string>;
}

/** Whether a message (its JSON) belongs to the target: same tenant, and one of its runs, threads or its user. */
export function belongsTo(json: string, target: ForgetTarget): boolean {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return false;
  }
  const parsed = Owned.safeParse(value);
  if (!parsed.success) return false;
  const owned = parsed.data;
  if ((owned.tenant ?? owned.meta?.tenant) !== target.tenant) return false;
  const runs = [owned.runId, owned.parentRunId, owned.meta?.runId];
  const threads = [owned.threadId, owned.meta?.threadId];
  const users = [owned.userId, owned.meta?.userId];
  return (
    runs.some((id) => id !== undefined && target.runIds.has(id)) ||
    threads.some((id) => id !== undefined && target.threadIds.has(id)) ||
    (target.userId !== undefined && users.includes(target.userId))
  );
}

/**
 * Deletes (erasing their data) the messages of a stream under `subject` that `pick` chooses. Reads
 * them one by one with STREAM.MSG.GET `next_by_subj` (no consumer: RUNS is a work queue, where a
 * second consumer over its subjects is refused). Returns how many went.
 */
async function deleteMessages(
  bus: Bus,
  stream: StreamName,
  subject: string,
  pick: (data: string) => boolean,
): Promise<number> {
  // a stream that is not there has nothing to forget here; one that cannot be asked fails the
  // forget (retryable), which is sent again, rather than leave content behind unsaid
  const stored = await bus.streamSubjectCount(stream, subject);
  if (!stored || stored.messages === 0) return 0;
  const until = Date.now() + SCAN_LIMIT_MS;
  let deleted = 0;
  for (let seq = stored.firstSeq; ; ) {
    if (Date.now() > until)
      throw new RuntimeError("unavailable", `${stream} could not be read through to forget; retry shortly`, {
        retryAfterMs: 1000,
      });
    const message = await bus.nextStreamMessage(stream, subject, seq);
    if (!message) return deleted;
    const data = Buffer.from(message.data).toString("utf8");
    // a message gone meanwhile (consumed, expired) is not counted; a delete that fails fails the forget
    if (pick(data) && (await bus.deleteStreamMessage(stream, message.seq))) deleted++;
    seq = message.seq + 1;
  }
}

/**
 * Messages of the target still in streams that keep content: run requests still queued in RUNS
 * (cancelled already, so they would only be dropped when a worker takes them) and dead letters
 * (a run request, a thread's turn or a request the runtime gave up on, kept 14 days).
 */
export async function forgetStreamMessages(bus: Bus, target: ForgetTarget): Promise<number> {
  const pick = (data: string) => belongsTo(data, target);
  const queued = await deleteMessages(bus, Streams.runs, `runs.*.${target.tenant}`, pick);
  const dead = await deleteMessages(bus, Streams.deadLetters, Subjects.deadLetterAll, (data) => {
    let letter: DeadLetter;
    try {
      letter = DeadLetter.parse(JSON.parse(data));
    } catch {
      return false;
    }
    return belongsTo(letter.payload, target);
  });
  return queued + dead;
}
