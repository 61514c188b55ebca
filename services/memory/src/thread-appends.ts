import { BatchedWrites } from "@agent-runtime/stores";
import type pg from "pg";

/** Messages to store in one thread, with their token counts. */
export interface ThreadAppend {
  tenant: string;
  threadId: string;
  userId?: string | undefined;
  agent?: string | undefined;
  messages: readonly { id: string; message: unknown; tokens: number }[];
}

/** What one append stored: the new messages with their sequence numbers, and the thread's unsummarised size. */
export interface AppendOutcome {
  added: { id: string; seq: number }[];
  historyTokens: number;
  summaryUpto: number;
}

/** Appends closer together than this mean others are on their way: a gathering append waits for them. */
const BUSY_GAP_MS = 5;

/**
 * Appends to threads, many threads per statement (see `BatchedWrites`): N turns stored at once cost
 * one round trip and one commit, not N. An append may also wait up to `gatherMs` for others to join
 * it (the background storing of journaled turns does: nobody waits for it), but only while appends
 * come in less than 5 ms apart: at a slower pace it would only be late, with nothing to share. A
 * batch holds one append per thread (a second one of a thread waits for the next batch, so a
 * thread's messages are numbered in the order they were appended). An append whose data the store
 * refuses fails alone.
 */
export class ThreadAppends {
  private readonly writer: BatchedWrites<ThreadAppend, AppendOutcome>;
  private lastArrival = Number.NEGATIVE_INFINITY;

  constructor(private readonly pool: pg.Pool) {
    this.writer = new BatchedWrites({
      write: (appends) => this.write(appends),
      keyOf: (append) => `${append.tenant}\u0000${append.threadId}`,
      isDataError: refusedData,
      maxBatch: 128,
    });
  }

  /** Statements written (for tests). */
  get writes(): number {
    return this.writer.writes;
  }

  append(append: ThreadAppend, gatherMs = 0): Promise<AppendOutcome> {
    const now = Date.now();
    const busy = now - this.lastArrival < BUSY_GAP_MS;
    this.lastArrival = now;
    return this.writer.add(append, busy ? gatherMs : 0);
  }

  private async write(appends: ThreadAppend[]): Promise<AppendOutcome[]> {
    const messageThread: number[] = [];
    const ids: string[] = [];
    const bodies: string[] = [];
    const tokens: number[] = [];
    for (const [index, append] of appends.entries()) {
      for (const message of append.messages) {
        messageThread.push(index + 1);
        ids.push(message.id);
        bodies.push(JSON.stringify(message.message));
        tokens.push(message.tokens);
      }
    }
    const result = await this.pool.query<{
      n: string;
      added: { id: string; seq: number }[] | null;
      history_tokens: string;
      summary_upto: string;
    }>({
      // named: parsed and planned once per connection (it runs for every batch of turns)
      name: "thread-append-batch",
      text: APPEND_SQL,
      values: [
        appends.map((append) => append.tenant),
        appends.map((append) => append.threadId),
        appends.map((append) => append.userId ?? null),
        appends.map((append) => append.agent ?? null),
        messageThread,
        ids,
        bodies,
        tokens,
      ],
    });
    const byIndex = new Map(result.rows.map((row) => [Number(row.n), row]));
    return appends.map((_append, index) => {
      const row = byIndex.get(index + 1);
      return {
        added: (row?.added ?? []).map((added) => ({ id: added.id, seq: Number(added.seq) })),
        historyTokens: Number(row?.history_tokens ?? 0),
        summaryUpto: Number(row?.summary_upto ?? 0),
      };
    });
  }
}

/** SQLSTATE classes about the data, not the store (22 data exception, 23 integrity, 54 program limit). */
function refusedData(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(22|23|54)/.test(code);
}

/**
 * Upserts each thread, inserts its new messages (in the order given; an id already stored is
 * skipped), and answers per thread: the messages added with their sequence numbers, and the tokens
 * of its history after the summary (the rows stored before plus those added now, which the
 * statement's own snapshot does not see).
 */
const APPEND_SQL = `WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS i(tenant, id, user_id, agent, n)
  ), thread AS (
    INSERT INTO threads (tenant, id, user_id, agent)
      SELECT tenant, id, user_id, agent FROM input ORDER BY n
    ON CONFLICT (tenant, id) DO UPDATE SET updated_at = now(),
      user_id = coalesce(threads.user_id, EXCLUDED.user_id), agent = coalesce(threads.agent, EXCLUDED.agent)
    RETURNING tenant, id, summary_upto
  ), added AS (
    INSERT INTO messages (tenant, thread_id, id, message, tokens)
      SELECT i.tenant, i.id, m.id, m.message::jsonb, m.tokens
      FROM unnest($5::int[], $6::text[], $7::text[], $8::int[]) WITH ORDINALITY AS m(thread, id, message, tokens, n)
      JOIN input i ON i.n = m.thread
      ORDER BY m.n
    ON CONFLICT (tenant, id) DO NOTHING
    RETURNING tenant, thread_id, id, seq, tokens
  )
  SELECT i.n,
    (SELECT json_agg(json_build_object('id', a.id, 'seq', a.seq) ORDER BY a.seq)
       FROM added a WHERE a.tenant = i.tenant AND a.thread_id = i.id) AS added,
    (SELECT coalesce(sum(m.tokens), 0) FROM messages m, thread t
       WHERE t.tenant = i.tenant AND t.id = i.id AND m.tenant = i.tenant AND m.thread_id = i.id
         AND m.seq > t.summary_upto)
      + (SELECT coalesce(sum(a.tokens), 0) FROM added a WHERE a.tenant = i.tenant AND a.thread_id = i.id)
      AS history_tokens,
    (SELECT t.summary_upto FROM thread t WHERE t.tenant = i.tenant AND t.id = i.id) AS summary_upto
  FROM input i ORDER BY i.n`;
