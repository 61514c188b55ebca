import {
  AssistantMessage,
  ChatMessage,
  ID_PATTERN,
  type RunRecord,
  type RunRequest,
  type RunStatus,
  RuntimeError,
  type TokenUsage,
} from "@agent-runtime/contracts";
import { migrate } from "@agent-runtime/stores";
import type pg from "pg";
import { z } from "zod";
import { PARTITION_MIGRATIONS, runCreatedAt } from "./partitions.js";

export const MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS runs (
     id text PRIMARY KEY,
     tenant text NOT NULL,
     agent text NOT NULL,
     status text NOT NULL,
     priority text NOT NULL,
     thread_id text,
     user_id text,
     parent_run_id text,
     request jsonb NOT NULL,
     steps integer NOT NULL DEFAULT 0,
     prompt_tokens integer NOT NULL DEFAULT 0,
     completion_tokens integer NOT NULL DEFAULT 0,
     cached_tokens integer NOT NULL DEFAULT 0,
     cost_usd double precision NOT NULL DEFAULT 0,
     output jsonb,
     error jsonb,
     attempts integer NOT NULL DEFAULT 0,
     created_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz NOT NULL DEFAULT now(),
     finished_at timestamptz
   )`,
  "ALTER TABLE runs ADD COLUMN IF NOT EXISTS plan jsonb",
  "ALTER TABLE runs ADD COLUMN IF NOT EXISTS plan_reason text",
  "CREATE INDEX IF NOT EXISTS runs_tenant_created ON runs (tenant, created_at DESC)",
  "CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent_run_id)",
  "CREATE INDEX IF NOT EXISTS runs_thread ON runs (tenant, thread_id)",
  `CREATE TABLE IF NOT EXISTS run_steps (
     run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     step integer NOT NULL,
     assistant jsonb NOT NULL,
     tool_messages jsonb NOT NULL DEFAULT '[]',
     model text,
     provider text,
     prompt_tokens integer NOT NULL DEFAULT 0,
     completion_tokens integer NOT NULL DEFAULT 0,
     cached_tokens integer NOT NULL DEFAULT 0,
     cost_usd double precision NOT NULL DEFAULT 0,
     latency_ms double precision NOT NULL DEFAULT 0,
     route text,
     created_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (run_id, step)
   )`,
  `CREATE TABLE IF NOT EXISTS event_runs (
     tenant text NOT NULL,
     event_id text NOT NULL,
     agent text NOT NULL,
     run_id text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant, event_id, agent)
   )`,
  // when the run first started (the time budget counts from here, not from when it was queued)
  "ALTER TABLE runs ADD COLUMN IF NOT EXISTS started_at timestamptz",
  // whether the triggered run reached the RUNS stream (rows from before this column had)
  "ALTER TABLE event_runs ADD COLUMN IF NOT EXISTS published boolean NOT NULL DEFAULT true",
  "ALTER TABLE run_steps ADD COLUMN IF NOT EXISTS finish_reason text",
  "CREATE INDEX IF NOT EXISTS runs_tenant_status ON runs (tenant, status) WHERE status IN ('queued', 'running')",
  // which finishing write ended the run (see Journal): one worker announces the outcome
  "ALTER TABLE runs ADD COLUMN IF NOT EXISTS finished_by text",
  // runs and steps partitioned by week, hot-query indexes (partitions.ts); keep this last
  ...PARTITION_MIGRATIONS,
];

export interface RecordedStep {
  step: number;
  assistant: AssistantMessage;
  /** Empty for a final answer (its tool calls, if any, are the client's to run). */
  toolMessages: ChatMessage[];
  usage: TokenUsage;
  costUsd: number;
  finishReason?: string;
}

/** How a step's model call went (kept with the step for the dashboard and for cost analysis). */
export interface StepDetails {
  model: string;
  provider: string;
  latencyMs: number;
  route: string;
  finishReason?: string;
}

const StepRow = z.object({
  step: z.number(),
  assistant: AssistantMessage,
  tool_messages: z.array(ChatMessage),
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  cached_tokens: z.number(),
  cost_usd: z.number(),
  finish_reason: z.string().nullable(),
});

/** Runs and their steps in Postgres: the only state a worker needs to resume a run. */
export class RunStore {
  constructor(private readonly pool: pg.Pool) {}

  static async create(pool: pg.Pool): Promise<RunStore> {
    await migrate(pool, "orchestrator", MIGRATIONS);
    return new RunStore(pool);
  }

  /**
   * Records a run as queued as soon as it is submitted (before a worker takes it), so it can be
   * looked up and cancelled while it waits. A run that already exists is left as it is.
   */
  async register(request: RunRequest): Promise<void> {
    await this.pool.query(
      `INSERT INTO runs (id, tenant, agent, status, priority, thread_id, user_id, parent_run_id, request, attempts, created_at)
       VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, 0, ${runCreatedAt("$1", "to_timestamp($9 / 1000.0)")})
       ON CONFLICT (id, created_at) DO NOTHING`,
      [...runColumns(request), request.createdAt],
    );
  }

  /**
   * Creates the run or takes it over (after a crash, a hand-off or a retry); returns its status,
   * when it first started (epoch ms) and its recorded steps.
   */
  async begin(
    request: RunRequest,
  ): Promise<{ status: RunStatus; attempt: number; startedAt: number; steps: RecordedStep[] }> {
    const result = await this.pool.query<{ status: RunStatus; attempts: number; started_ms: number }>(
      `INSERT INTO runs (id, tenant, agent, status, priority, thread_id, user_id, parent_run_id, request, attempts, created_at, started_at)
       VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, 1, ${runCreatedAt("$1", "to_timestamp($9 / 1000.0)")}, now())
       ON CONFLICT (id, created_at) DO UPDATE SET attempts = runs.attempts + 1, updated_at = now(),
         started_at = COALESCE(runs.started_at, now()),
         status = CASE WHEN runs.status = 'queued' THEN 'running' ELSE runs.status END
       RETURNING status, attempts, (extract(epoch FROM started_at) * 1000)::float8 AS started_ms`,
      [...runColumns(request), request.createdAt],
    );
    const row = result.rows[0]!;
    const startedAt = Math.round(Number(row.started_ms));
    // a new run has no steps yet
    if (row.attempts === 1) return { status: row.status, attempt: 1, startedAt, steps: [] };
    const steps = await this.pool.query(
      `SELECT step, assistant, tool_messages, prompt_tokens, completion_tokens, cached_tokens, cost_usd, finish_reason
       FROM run_steps WHERE run_id = $1 ORDER BY step`,
      [request.runId],
    );
    return {
      status: row.status,
      attempt: row.attempts,
      startedAt,
      steps: steps.rows.map((raw) => {
        const step = StepRow.parse(raw);
        return {
          step: step.step,
          assistant: step.assistant,
          toolMessages: step.tool_messages,
          usage: {
            promptTokens: step.prompt_tokens,
            completionTokens: step.completion_tokens,
            cachedTokens: step.cached_tokens,
            totalTokens: step.prompt_tokens + step.completion_tokens,
          },
          costUsd: step.cost_usd,
          ...(step.finish_reason ? { finishReason: step.finish_reason } : {}),
        };
      }),
    };
  }

  /** The plan decided for a run (null plan = decided to go without). */
  async savePlan(
    runId: string,
    plan: unknown,
    reason: string,
    costUsd: number,
    usage?: TokenUsage,
  ): Promise<void> {
    await this.pool.query(
      `UPDATE runs SET plan = $2, plan_reason = $3, cost_usd = cost_usd + $4,
         prompt_tokens = prompt_tokens + $5, completion_tokens = completion_tokens + $6 WHERE id = $1`,
      [runId, JSON.stringify(plan), reason, costUsd, usage?.promptTokens ?? 0, usage?.completionTokens ?? 0],
    );
  }

  async loadPlan(runId: string): Promise<{ decided: boolean; plan: unknown; reason: string | null }> {
    const result = await this.pool.query<{ plan: unknown; plan_reason: string | null }>(
      "SELECT plan, plan_reason FROM runs WHERE id = $1",
      [runId],
    );
    const row = result.rows[0];
    return { decided: Boolean(row?.plan_reason), plan: row?.plan ?? null, reason: row?.plan_reason ?? null };
  }

  async cancel(
    tenant: string,
    runId: string,
  ): Promise<{ found: boolean; status: RunStatus; cancelled: boolean; previous?: RunStatus }> {
    const result = await this.pool.query<{ previous: RunStatus }>(
      `WITH before AS (
         SELECT id, status FROM runs WHERE id = $1 AND tenant = $2 AND status IN ('queued', 'running') FOR UPDATE
       )
       UPDATE runs SET status = 'cancelled', finished_at = now(), updated_at = now(),
         error = '{"code":"cancelled","message":"cancelled by request","retryable":false}'
       FROM before WHERE runs.id = before.id RETURNING before.status AS previous`,
      [runId, tenant],
    );
    const cancelled = result.rows[0];
    if (cancelled) return { found: true, status: "cancelled", cancelled: true, previous: cancelled.previous };
    const current = await this.pool.query<{ status: RunStatus }>(
      "SELECT status FROM runs WHERE id = $1 AND tenant = $2",
      [runId, tenant],
    );
    const row = current.rows[0];
    return row
      ? { found: true, status: row.status, cancelled: false }
      : { found: false, status: "cancelled", cancelled: false };
  }

  async status(runId: string): Promise<RunStatus | undefined> {
    const result = await this.pool.query<{ status: RunStatus }>("SELECT status FROM runs WHERE id = $1", [
      runId,
    ]);
    return result.rows[0]?.status;
  }

  async get(tenant: string, runId: string): Promise<RunRecord | null> {
    const result = await this.pool.query("SELECT * FROM runs WHERE id = $1 AND tenant = $2", [runId, tenant]);
    return result.rows[0] ? toRecord(result.rows[0]) : null;
  }

  async list(
    tenant: string,
    filter: { threadId?: string; status?: RunStatus; agent?: string; limit: number; cursor?: string },
  ): Promise<{ runs: RunRecord[]; nextCursor: string | null }> {
    const where = ["tenant = $1"];
    const params: unknown[] = [tenant];
    if (filter.threadId) where.push(`thread_id = $${params.push(filter.threadId)}`);
    if (filter.status) where.push(`status = $${params.push(filter.status)}`);
    if (filter.agent) where.push(`agent = $${params.push(filter.agent)}`);
    if (filter.cursor) {
      const [createdAt, id] = Buffer.from(filter.cursor, "base64url").toString().split("|");
      // a cursor not made by this list is the caller's mistake, not a query Postgres refuses
      if (
        !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(createdAt ?? "") ||
        !ID_PATTERN.test(id ?? "")
      )
        throw new RuntimeError("validation", "not a cursor from next_cursor", { retryable: false });
      where.push(`(created_at, id) < ($${params.push(createdAt)}::timestamptz, $${params.push(id)})`);
    }
    params.push(filter.limit + 1);
    const result = await this.pool.query(
      `SELECT * FROM runs WHERE ${where.join(" AND ")} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    const rows = result.rows.slice(0, filter.limit);
    const last = rows[rows.length - 1];
    const nextCursor =
      result.rows.length > filter.limit && last
        ? Buffer.from(`${(last.created_at as Date).toISOString()}|${last.id}`).toString("base64url")
        : null;
    return { runs: rows.map(toRecord), nextCursor };
  }

  /**
   * Claims the run an event starts for an agent (deduplicated by tenant, event id and agent, for
   * as long as the row is kept). Returns the run id to use — the first claim's — and whether that
   * run already reached the RUNS stream; an unpublished claim (a crash between the claim and the
   * publish) is published again under the same id.
   */
  async claimEvent(
    tenant: string,
    eventId: string,
    agent: string,
    runId: string,
  ): Promise<{ runId: string; published: boolean }> {
    const result = await this.pool.query<{ run_id: string; published: boolean }>(
      `WITH claimed AS (
         INSERT INTO event_runs (tenant, event_id, agent, run_id, published) VALUES ($1, $2, $3, $4, false)
         ON CONFLICT DO NOTHING RETURNING run_id, published
       )
       SELECT run_id, published FROM claimed
       UNION ALL
       SELECT run_id, published FROM event_runs WHERE tenant = $1 AND event_id = $2 AND agent = $3
       LIMIT 1`,
      [tenant, eventId, agent, runId],
    );
    // a claim racing this one commits after this statement's snapshot: read it afterwards
    const row =
      result.rows[0] ??
      (
        await this.pool.query<{ run_id: string; published: boolean }>(
          "SELECT run_id, published FROM event_runs WHERE tenant = $1 AND event_id = $2 AND agent = $3",
          [tenant, eventId, agent],
        )
      ).rows[0];
    if (!row) throw new Error(`event claim for ${eventId} vanished`);
    return { runId: row.run_id, published: row.published };
  }

  async eventPublished(tenant: string, eventId: string, agent: string): Promise<void> {
    await this.pool.query(
      "UPDATE event_runs SET published = true WHERE tenant = $1 AND event_id = $2 AND agent = $3",
      [tenant, eventId, agent],
    );
  }
}

function runColumns(request: RunRequest): unknown[] {
  return [
    request.runId,
    request.tenant,
    request.agent,
    request.priority,
    request.threadId ?? null,
    request.userId ?? null,
    request.parentRunId ?? null,
    JSON.stringify(request),
  ];
}

function toRecord(row: Record<string, unknown>): RunRecord {
  const prompt = Number(row.prompt_tokens);
  const completion = Number(row.completion_tokens);
  const iso = (value: unknown) => (value instanceof Date ? value.toISOString() : null);
  return {
    runId: String(row.id),
    tenant: String(row.tenant),
    agent: String(row.agent),
    status: row.status as RunStatus,
    priority: row.priority as RunRecord["priority"],
    threadId: (row.thread_id as string | null) ?? null,
    userId: (row.user_id as string | null) ?? null,
    parentRunId: (row.parent_run_id as string | null) ?? null,
    steps: Number(row.steps),
    usage: {
      promptTokens: prompt,
      completionTokens: completion,
      cachedTokens: Number(row.cached_tokens),
      totalTokens: prompt + completion,
    },
    costUsd: Number(row.cost_usd),
    output: (row.output as RunRecord["output"]) ?? null,
    error: (row.error as RunRecord["error"]) ?? null,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
    finishedAt: iso(row.finished_at),
  };
}
