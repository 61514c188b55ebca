import { ChatMessage, type StoredMessage } from "@agent-runtime/contracts";
import { type Redis, redisReady } from "@agent-runtime/stores";
import type pg from "pg";
import { z } from "zod";
import { messageTokens } from "./tokens.js";

export interface ThreadState {
  found: boolean;
  summary: string | null;
  summaryTokens: number;
  /** Newest last; only messages after the summary. */
  messages: { id: string; seq: number; message: ChatMessage; tokens: number }[];
}

const HotState = z.object({
  found: z.boolean(),
  summary: z.string().nullable(),
  summaryTokens: z.number(),
  messages: z.array(z.object({ id: z.string(), seq: z.number(), message: ChatMessage, tokens: z.number() })),
});

const EXTEND_SCRIPT = `
local current = redis.call("GET", KEYS[1])
if not current then return 0 end
local state = cjson.decode(current)
local added = cjson.decode(ARGV[1])
local last = 0
for _, m in ipairs(state.messages) do if m.seq > last then last = m.seq end end
for _, m in ipairs(added) do if m.seq > last then table.insert(state.messages, m) end end
table.sort(state.messages, function(a, b) return a.seq < b.seq end)
local keep = tonumber(ARGV[2])
while #state.messages > keep do table.remove(state.messages, 1) end
if #state.messages == 0 then state.messages = cjson.decode("[]") end
redis.call("SET", KEYS[1], cjson.encode(state), "KEEPTTL")
return #added
`;

/** Threads and messages in Postgres, with a hot copy of recent turns in Redis. */
export class ThreadStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly hotTurns: number,
  ) {}

  private hotKey(tenant: string, threadId: string): string {
    return `${this.prefix}mem:thread:${tenant}:${threadId}`;
  }

  /** The summary and the newest messages after it: Redis first, Postgres on a miss. */
  async state(tenant: string, threadId: string): Promise<ThreadState & { hot: boolean }> {
    if (redisReady(this.redis)) {
      try {
        const cached = await this.redis.get(this.hotKey(tenant, threadId));
        if (cached) {
          const parsed = HotState.safeParse(JSON.parse(cached));
          if (parsed.success) return { ...parsed.data, hot: true };
        }
      } catch {
        // read Postgres instead
      }
    }
    const state = await this.load(tenant, threadId);
    await this.cache(tenant, threadId, state);
    return { ...state, hot: false };
  }

  private async load(tenant: string, threadId: string): Promise<ThreadState> {
    const thread = await this.pool.query<{
      summary: string | null;
      summary_upto: string;
      summary_tokens: number;
    }>("SELECT summary, summary_upto, summary_tokens FROM threads WHERE tenant = $1 AND id = $2", [
      tenant,
      threadId,
    ]);
    const row = thread.rows[0];
    if (!row) return { found: false, summary: null, summaryTokens: 0, messages: [] };
    const messages = await this.pool.query<{ id: string; seq: string; message: unknown; tokens: number }>(
      `SELECT id, seq, message, tokens FROM (
         SELECT id, seq, message, tokens FROM messages
         WHERE tenant = $1 AND thread_id = $2 AND seq > $3 ORDER BY seq DESC LIMIT $4
       ) recent ORDER BY seq`,
      [tenant, threadId, row.summary_upto, this.hotTurns],
    );
    return {
      found: true,
      summary: row.summary,
      summaryTokens: row.summary_tokens,
      messages: messages.rows.map((message) => ({
        id: message.id,
        seq: Number(message.seq),
        message: ChatMessage.parse(message.message),
        tokens: message.tokens,
      })),
    };
  }

  private async cache(tenant: string, threadId: string, state: ThreadState): Promise<void> {
    if (!state.found || !redisReady(this.redis)) return;
    await this.redis
      .set(this.hotKey(tenant, threadId), JSON.stringify(state), "EX", 3600)
      .catch(() => undefined);
  }

  /** Stores messages idempotently by id; returns how many were new. */
  async append(
    tenant: string,
    threadId: string,
    messages: readonly StoredMessage[],
    owner: { userId?: string; agent?: string },
  ): Promise<{ appended: number; skipped: number; historyTokens: number }> {
    const tokenCounts = messages.map((message) => message.tokens ?? messageTokens(message.message));
    // one statement, one round trip: upsert the thread, insert new messages, total the unsummarised history
    const result = await this.pool.query<{
      added: { id: string; seq: number }[] | null;
      history_tokens: string;
    }>(
      `WITH thread AS (
         INSERT INTO threads (tenant, id, user_id, agent) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant, id) DO UPDATE SET updated_at = now()
         RETURNING summary_upto
       ), added AS (
         INSERT INTO messages (tenant, thread_id, id, message, tokens)
         SELECT $1, $2, id, message::jsonb, tokens
         FROM unnest($5::text[], $6::text[], $7::int[]) WITH ORDINALITY AS m(id, message, tokens, n)
         ORDER BY n
         ON CONFLICT (tenant, id) DO NOTHING
         RETURNING id, seq, tokens
       )
       SELECT (SELECT json_agg(json_build_object('id', id, 'seq', seq) ORDER BY seq) FROM added) AS added,
              (SELECT coalesce(sum(m.tokens), 0) FROM messages m, thread t
                WHERE m.tenant = $1 AND m.thread_id = $2 AND m.seq > t.summary_upto)
              + (SELECT coalesce(sum(tokens), 0) FROM added) AS history_tokens`,
      [
        tenant,
        threadId,
        owner.userId ?? null,
        owner.agent ?? null,
        messages.map((message) => message.id),
        messages.map((message) => JSON.stringify(message.message)),
        tokenCounts,
      ],
    );
    const inserted = result.rows[0]?.added ?? [];
    const historyTokens = Number(result.rows[0]?.history_tokens ?? 0);
    if (inserted.length > 0) {
      const byId = new Map(
        messages.map((message, index) => [
          message.id,
          { message: message.message, tokens: tokenCounts[index]! },
        ]),
      );
      await this.extendHot(
        tenant,
        threadId,
        inserted.map((row) => ({ id: row.id, seq: Number(row.seq), ...byId.get(row.id)! })),
      );
    }
    return { appended: inserted.length, skipped: messages.length - inserted.length, historyTokens };
  }

  /**
   * Adds new messages to the hot copy atomically (a Lua script), so the next
   * context needs no Postgres round trip; a missing copy stays missing.
   */
  private async extendHot(
    tenant: string,
    threadId: string,
    added: { id: string; seq: number; message: ChatMessage; tokens: number }[],
  ): Promise<void> {
    if (!redisReady(this.redis)) return;
    try {
      await this.redis.eval(
        EXTEND_SCRIPT,
        1,
        this.hotKey(tenant, threadId),
        JSON.stringify(added),
        String(this.hotTurns),
      );
    } catch {
      await this.invalidate(tenant, threadId);
    }
  }

  /** Drops the hot copy; the next context rebuilds it from Postgres. */
  async invalidate(tenant: string, threadId: string): Promise<void> {
    if (redisReady(this.redis)) await this.redis.del(this.hotKey(tenant, threadId)).catch(() => undefined);
  }

  async list(
    tenant: string,
    threadId: string,
    limit: number,
  ): Promise<{ found: boolean; messages: StoredMessage[] }> {
    const thread = await this.pool.query("SELECT 1 FROM threads WHERE tenant = $1 AND id = $2", [
      tenant,
      threadId,
    ]);
    if (thread.rowCount === 0) return { found: false, messages: [] };
    const rows = await this.pool.query<{ id: string; message: unknown; tokens: number; created_at: Date }>(
      `SELECT id, message, tokens, created_at FROM (
         SELECT id, seq, message, tokens, created_at FROM messages WHERE tenant = $1 AND thread_id = $2 ORDER BY seq DESC LIMIT $3
       ) recent ORDER BY seq`,
      [tenant, threadId, limit],
    );
    return {
      found: true,
      messages: rows.rows.map((row) => ({
        id: row.id,
        message: ChatMessage.parse(row.message),
        tokens: row.tokens,
        createdAt: row.created_at.toISOString(),
      })),
    };
  }
}
