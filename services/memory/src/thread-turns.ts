import { type Bus, type ConsumerHandle, consume, decodeWith, type StreamMessage } from "@agent-runtime/bus";
import { Consumers, MemoryAppendRequest, RuntimeError, Streams, Subjects } from "@agent-runtime/contracts";
import type { Logger } from "@agent-runtime/telemetry";

/**
 * Stores a journaled turn in its thread (idempotent by message id). `background`: nobody waits for
 * it (the consumer's storing, not a read's catch-up), so it may wait to share a write with others.
 */
export type StoreTurn = (turn: MemoryAppendRequest, options: { background: boolean }) => Promise<unknown>;

/** More turns than this waiting for one thread means something else is wrong. */
const MAX_TURNS_PER_CATCH_UP = 1000;

/**
 * The turns the orchestrator journals for threads (THREAD_TURNS, one subject per thread, a work
 * queue): a consumer stores them in the background, and every read of a thread first stores the
 * ones still waiting, oldest first, so a turn is in its thread for the next turn's context however
 * far the consumer lags. One catch-up per thread runs at a time in this process; across replicas
 * and with the consumer the stores are idempotent, and a duplicate insert waits for the first to
 * commit, so a thread's turns keep their order.
 */
export class ThreadTurns {
  private readonly running = new Map<string, Promise<void>>();
  private consumer: ConsumerHandle | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly store: StoreTurn,
  ) {}

  /** Stores every turn of the thread that is journaled and not yet stored. */
  catchUp(tenant: string, threadId: string): Promise<void> {
    const key = `${tenant}\u0000${threadId}`;
    const running = this.running.get(key);
    // a catch-up already under way may have passed a turn journaled since: chain a new one after it
    const next = (running ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.storeWaiting(tenant, threadId));
    const tracked = next.finally(() => {
      if (this.running.get(key) === tracked) this.running.delete(key);
    });
    this.running.set(key, tracked);
    return tracked;
  }

  private async storeWaiting(tenant: string, threadId: string): Promise<void> {
    const subject = Subjects.threadTurns(tenant, threadId);
    let from = 1;
    for (let count = 0; count < MAX_TURNS_PER_CATCH_UP; count++) {
      let stored: StreamMessage | null;
      try {
        stored = await this.bus.nextStreamMessageDirect(Streams.threadTurns, subject, from);
      } catch (cause) {
        throw unavailable(cause);
      }
      if (!stored) return;
      let turn: MemoryAppendRequest;
      try {
        turn = decodeWith(MemoryAppendRequest, stored.data);
      } catch (error) {
        // the consumer dead-letters it; a read of the thread goes on without it
        this.logger.warn({ err: error, seq: stored.seq }, "unreadable journaled turn skipped");
        from = stored.seq + 1;
        continue;
      }
      await this.store(turn, { background: false });
      from = stored.seq + 1;
    }
    this.logger.warn({ tenant, threadId }, "a thread has more journaled turns waiting than one read stores");
  }

  /** Starts the background consumer that stores journaled turns. */
  async start(concurrency: number): Promise<void> {
    await this.bus.ensureStreams(["THREAD_TURNS"]);
    this.consumer = await consume(this.bus, {
      stream: "THREAD_TURNS",
      durable: Consumers.threadTurns,
      schema: MemoryAppendRequest,
      concurrency,
      maxDeliver: 20,
      backoff: { initialMs: 250, maxMs: 30_000 },
      ackWaitMs: 30_000,
      deadLetterOrigin: "memory-turns",
      // a thread's turns cannot overtake each other here: the next turn of a thread is only made
      // after a read of the thread, which stored this one
      handler: async (turn) => {
        await this.store(turn, { background: true });
      },
    });
  }

  /** Drops the journaled turns of threads being forgotten (they would be stored again otherwise). */
  async discard(tenant: string, threadIds: readonly string[]): Promise<void> {
    if (threadIds.length === 0) return;
    await Promise.all(
      threadIds.map((threadId) =>
        this.bus.purgeStreamSubject(Streams.threadTurns, Subjects.threadTurns(tenant, threadId)),
      ),
    );
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
  }
}

function unavailable(cause: unknown): RuntimeError {
  return new RuntimeError("unavailable", "the thread's journaled turns cannot be read; retry shortly", {
    retryAfterMs: 500,
    cause,
  });
}
