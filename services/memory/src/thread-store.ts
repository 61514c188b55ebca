import { ChatMessage, type StoredMessage } from "@agent-runtime/contracts";
import type { Redis } from "@agent-runtime/stores";
import type pg from "pg";
import { type HotEntry, HotThreads, type ThreadState } from "./hot-thread.js";
import { ThreadAppends } from "./thread-appends.js";
import { messageTokens } from "./tokens.js";

export type { ThreadState } from "./hot-thread.js";

const EMPTY: ThreadState = { found: false, summary: null, summaryTokens: 0, messages: [], older: 0 };

/** Threads and messages in Postgres (the record), with a hot copy of recent turns in Redis. */
export class ThreadStore {
  readonly hot: HotThreads;
  private readonly appends: ThreadAppends;

  constructor(
    private readonly pool: pg.Pool,
    redis: Redis,
    prefix: string,
    private readonly hotTurns: number,
  ) {
    this.hot = new HotThreads(redis, prefix, hotTurns);
    this.appends = new ThreadAppends(pool);
  }

  /** The summary and the newest messages after it: Redis first, Postgres on a miss. */
  async state(tenant: string, threadId: string): Promise<ThreadState & { hot: boolean }> {
    const cached = await this.hot.read(tenant, threadId);
    if (cached.state) return { ...cached.state, hot: true };
    const state = await this.load(tenant, threadId);
    await this.hot.fill(tenant, threadId, cached.version, state);
    return { ...state, hot: false };
  }

  private async load(tenant: string, threadId: string): Promise<ThreadState> {
    const result = await this.pool.query<{
      summary: string | null;
      summary_tokens: number;
      pending: string;
      recent: { id: string; seq: string; message: unknown; tokens: number }[] | null;
    }>({
      // named: parsed and planned once per connection (it runs on every turn of a cold thread)
      name: "thread-load",
      text: `SELECT t.summary, t.summary_tokens,
         (SELECT count(*) FROM messages m WHERE m.tenant = t.tenant AND m.thread_id = t.id AND m.seq > t.summary_upto) AS pending,
         (SELECT json_agg(r ORDER BY r.seq) FROM (
            SELECT m.id, m.seq, m.message, m.tokens FROM messages m
            WHERE m.tenant = t.tenant AND m.thread_id = t.id AND m.seq > t.summary_upto
            ORDER BY m.seq DESC LIMIT $3) r) AS recent
       FROM threads t WHERE t.tenant = $1 AND t.id = $2`,
      values: [tenant, threadId, this.hotTurns],
    });
    const row = result.rows[0];
    if (!row) return EMPTY;
    const messages = (row.recent ?? []).map((message) => ({
      id: message.id,
      seq: Number(message.seq),
      message: ChatMessage.parse(message.message),
      tokens: message.tokens,
    }));
    return {
      found: true,
      summary: row.summary,
      summaryTokens: row.summary_tokens,
      messages,
      older: Number(row.pending) - messages.length,
    };
  }

  /**
   * Stores messages idempotently by id; returns how many were new and the unsummarised history size.
   * Appends made at once share one statement (see ThreadAppends); `gatherMs` lets this one wait that
   * long for others to join it.
   */
  async append(
    tenant: string,
    threadId: string,
    messages: readonly StoredMessage[],
    owner: { userId?: string; agent?: string },
    options: { gatherMs?: number } = {},
  ): Promise<{ appended: number; skipped: number; historyTokens: number; summaryUpto: number }> {
    const counted = messages.map((message) => ({
      id: message.id,
      message: message.message,
      tokens: message.tokens ?? messageTokens(message.message),
    }));
    const outcome = await this.appends.append(
      { tenant, threadId, userId: owner.userId, agent: owner.agent, messages: counted },
      options.gatherMs,
    );
    if (outcome.added.length > 0) {
      const byId = new Map(counted.map((message) => [message.id, message]));
      const added: HotEntry[] = outcome.added.map((row) => ({
        id: row.id,
        seq: row.seq,
        message: byId.get(row.id)!.message,
        tokens: byId.get(row.id)!.tokens,
      }));
      await this.hot.extend(tenant, threadId, added);
    }
    return {
      appended: outcome.added.length,
      skipped: messages.length - outcome.added.length,
      historyTokens: outcome.historyTokens,
      summaryUpto: outcome.summaryUpto,
    };
  }

  /** Drops the hot copy; the next context rebuilds it from Postgres. */
  invalidate(tenant: string, threadId: string): Promise<void> {
    return this.hot.invalidate(tenant, threadId);
  }

  /** A page of a thread's stored messages, oldest first; `before` (a message id) pages backwards. */
  async list(
    tenant: string,
    threadId: string,
    limit: number,
    before?: string,
  ): Promise<{ found: boolean; messages: StoredMessage[] }> {
    const result = await this.pool.query<{
      page: { id: string; message: unknown; tokens: number; created_at: string }[] | null;
    }>(
      `SELECT (SELECT json_agg(r ORDER BY r.seq) FROM (
           SELECT m.id, m.seq, m.message, m.tokens, m.created_at FROM messages m
           WHERE m.tenant = t.tenant AND m.thread_id = t.id
             AND ($4::text IS NULL OR m.seq < (SELECT b.seq FROM messages b
                   WHERE b.tenant = t.tenant AND b.thread_id = t.id AND b.id = $4))
           ORDER BY m.seq DESC LIMIT $3) r) AS page
       FROM threads t WHERE t.tenant = $1 AND t.id = $2`,
      [tenant, threadId, limit, before ?? null],
    );
    const row = result.rows[0];
    if (!row) return { found: false, messages: [] };
    return {
      found: true,
      messages: (row.page ?? []).map((entry) => ({
        id: entry.id,
        message: ChatMessage.parse(entry.message),
        tokens: entry.tokens,
        createdAt: new Date(entry.created_at).toISOString(),
      })),
    };
  }
}
