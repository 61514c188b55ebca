import { setTimeout as sleep } from "node:timers/promises";
import type { Bus } from "@agent-runtime/bus";
import {
  Endpoints,
  FORGET_RUN_BATCH,
  QueueGroups,
  type RequestMeta,
  type RunForgetReply,
  type RunForgetRequest,
  Streams,
  Subjects,
  TENANT_ID_PATTERN,
} from "@agent-runtime/contracts";
import { migrate, withTransaction } from "@agent-runtime/stores";
import type { Logger } from "@agent-runtime/telemetry";
import type pg from "pg";
import { forgetStreamMessages } from "./forget-streams.js";
import { CancelNotice } from "./run-endpoints.js";
import { EventPublisher, emptyUsage } from "./run-events.js";

/**
 * `run.forget`: forgets what the runs of some threads or of one end user said, everywhere the
 * runs left it. A forgotten run keeps its row, so that its status and totals stay (tokens, cost,
 * steps, times: usage is kept) and a queued copy still in the RUNS stream is never run again, but
 * the row loses its content and whose it was: request (reduced to id, tenant, agent, priority),
 * output, plan, error message, thread and user. Its steps keep model, provider, tokens, cost and
 * latency; their messages go. Its events go from RUN_EVENTS (`GET /v1/runs/:id/events` replays
 * nothing and ends with the scrubbed outcome), and the model proxy and tool executor drop what
 * they keep of its calls (idempotency records with replies, cached responses, results and
 * embeddings). A run still queued or running is cancelled first; its steps are scrubbed again a
 * moment later, after a step that was being written when the cancel came.
 *
 * Turns of its threads journaled but not yet stored by memory (THREAD_TURNS) are purged too.
 * Run requests of the target still queued in RUNS and dead letters of its runs, threads or user
 * (DEAD_LETTERS) are erased on the last round.
 *
 * Runs delegated to by a forgotten run go with it. At most FORGET_RUN_BATCH runs per call; the
 * caller asks again while `more`. The caches go before the rows are scrubbed, so a call that
 * fails halfway leaves the runs findable and a retry completes it.
 */
export interface ForgetRunsDeps {
  bus: Bus;
  pool: pg.Pool;
  logger: Logger;
  /** How long after a cancel the steps are scrubbed again (a step being journaled at that moment). */
  settleMs?: number;
}

interface TargetRun {
  id: string;
  thread_id: string | null;
  user_id: string | null;
  status: string;
}

const SCRUBBED_STEP = JSON.stringify({ role: "assistant", content: null });
const FORGOTTEN = "forgotten";
/** Event subjects purged at once. */
const PURGE_CONCURRENCY = 16;

export async function forgetRuns(deps: ForgetRunsDeps, request: RunForgetRequest): Promise<RunForgetReply> {
  const { bus, pool } = deps;
  const tenant = request.meta.tenant;
  // a forgotten run has no thread and no user any more: a second call does not find it again
  const found = await pool.query<TargetRun & { top: boolean }>(
    `WITH RECURSIVE target AS (
       (SELECT id, thread_id, user_id, status, true AS top FROM runs
         WHERE tenant = $1 AND (thread_id = ANY($2::text[]) OR ($3::text IS NOT NULL AND user_id = $3))
         ORDER BY created_at LIMIT $4)
       UNION
       SELECT r.id, r.thread_id, r.user_id, r.status, false AS top FROM runs r JOIN target t ON r.parent_run_id = t.id
        WHERE r.tenant = $1
     )
     SELECT id, thread_id, user_id, status, bool_or(top) AS top FROM target GROUP BY id, thread_id, user_id, status`,
    [tenant, request.threadIds, request.userId ?? null, FORGET_RUN_BATCH],
  );
  const runs = found.rows;
  const runIds = runs.map((run) => run.id);
  const threadIds = unique([...request.threadIds, ...runs.map((run) => run.thread_id)]);
  const more = runs.filter((run) => run.top).length >= FORGET_RUN_BATCH;

  // nothing new may be said while it is being forgotten: runs still going are cancelled
  const cancelled = await cancelRuns(deps, tenant, runIds);

  const tools = runIds.length > 0 ? await toolsCalled(pool, runIds) : [];
  const meta: RequestMeta = { ...request.meta, requestId: `${request.meta.requestId}:forget` };
  await Promise.all([
    bus.request(Endpoints.modelForget, {
      meta,
      runIds,
      // cached answers are keyed by user, not thread: the thread's users' go (a thread's summaries
      // are made without a user: those too)
      userIds: unique([
        ...(request.userId ? [request.userId] : []),
        ...runs.map((run) => run.user_id ?? ""),
        ...(threadIds.length > 0 ? [""] : []),
      ]),
      threadIds,
    }),
    runIds.length > 0
      ? bus.request(Endpoints.toolForget, {
          meta,
          runIds,
          userIds: unique(runs.map((run) => run.user_id ?? "")),
          tools,
        })
      : Promise.resolve(undefined),
    purgeEvents(bus, runIds),
    purgeTurns(bus, tenant, threadIds),
  ]);
  // once per target (its last round): queued run requests and dead letters of its runs, threads or user
  const erased = more
    ? 0
    : await forgetStreamMessages(bus, {
        tenant,
        threadIds: new Set(threadIds),
        userId: request.userId,
        runIds: new Set(runIds),
      });

  const scrubbed = await scrubRows(pool, tenant, runIds);
  if (cancelled.length > 0) {
    // what a cancelled worker was writing as the cancel came (a step, events, a model call's
    // record) lands after the scrub: once more, for those runs
    await sleep(deps.settleMs ?? 1500);
    await scrubSteps(pool, cancelled);
    await Promise.all([
      purgeEvents(bus, cancelled),
      bus.request(Endpoints.modelForget, { meta, runIds: cancelled }),
      bus.request(Endpoints.toolForget, { meta, runIds: cancelled }),
    ]);
  }
  deps.logger.info(
    { tenant, runs: runIds.length, steps: scrubbed.steps, cancelled: cancelled.length, erased, more },
    "forgot runs",
  );
  return { runs: runIds.length, steps: scrubbed.steps, cancelled: cancelled.length, threadIds, more };
}

/** Cancels the runs still queued or running, tells their workers, and ends a queued one's stream. */
async function cancelRuns(deps: ForgetRunsDeps, tenant: string, runIds: string[]): Promise<string[]> {
  if (runIds.length === 0) return [];
  const result = await deps.pool.query<{ id: string; previous: string }>(
    `WITH before AS (
       SELECT id, status FROM runs WHERE tenant = $1 AND id = ANY($2::text[]) AND status IN ('queued', 'running')
       FOR UPDATE
     )
     UPDATE runs SET status = 'cancelled', finished_at = now(), updated_at = now(),
       error = '{"code":"cancelled","message":"cancelled: its thread or user was forgotten","retryable":false}'
     FROM before WHERE runs.id = before.id RETURNING runs.id, before.status AS previous`,
    [tenant, runIds],
  );
  for (const row of result.rows) {
    deps.bus.publish(Subjects.runCancelled(row.id), CancelNotice, {
      reason: "its thread or user was forgotten",
    });
    // no worker holds a queued run: its waiting client hears the end now
    if (row.previous === "queued")
      new EventPublisher(deps.bus, row.id, 1).emit({
        type: "run-finished",
        status: "cancelled",
        usage: emptyUsage(),
        costUsd: 0,
        steps: 0,
        error: { code: "cancelled", message: "its thread or user was forgotten", retryable: false },
      });
  }
  return result.rows.map((row) => row.id);
}

/** The names of the tools the runs called (their cached results go too). */
async function toolsCalled(pool: pg.Pool, runIds: string[]): Promise<string[]> {
  const result = await pool.query<{ name: string | null }>(
    `SELECT DISTINCT call->'function'->>'name' AS name
       FROM run_steps s, jsonb_array_elements(
         CASE WHEN jsonb_typeof(s.assistant->'tool_calls') = 'array' THEN s.assistant->'tool_calls' ELSE '[]'::jsonb END
       ) AS call
      WHERE s.run_id = ANY($1::text[])`,
    [runIds],
  );
  return result.rows
    .map((row) => row.name)
    .filter((name): name is string => typeof name === "string" && TENANT_ID_PATTERN.test(name));
}

/** Deletes the runs' events from RUN_EVENTS (one subject per run). */
async function purgeEvents(bus: Bus, runIds: string[]): Promise<void> {
  if (runIds.length === 0) return;
  for (let start = 0; start < runIds.length; start += PURGE_CONCURRENCY) {
    await Promise.all(
      runIds
        .slice(start, start + PURGE_CONCURRENCY)
        .map((runId) => bus.purgeStreamSubject(Streams.runEvents, Subjects.runEvents(runId))),
    );
  }
}

/**
 * Deletes the turns the runs journaled for their threads that memory has not stored yet
 * (THREAD_TURNS, one subject per thread): stored later, they would bring a forgotten thread back.
 */
async function purgeTurns(bus: Bus, tenant: string, threadIds: string[]): Promise<void> {
  if (threadIds.length === 0) return;
  for (let start = 0; start < threadIds.length; start += PURGE_CONCURRENCY) {
    await Promise.all(
      threadIds
        .slice(start, start + PURGE_CONCURRENCY)
        .map((threadId) =>
          bus.purgeStreamSubject(Streams.threadTurns, Subjects.threadTurns(tenant, threadId)),
        ),
    );
  }
}

async function scrubSteps(client: pg.Pool | pg.PoolClient, runIds: string[]): Promise<number> {
  const result = await client.query(
    `UPDATE run_steps SET assistant = $2::jsonb, tool_messages = '[]'::jsonb
      WHERE run_id = ANY($1::text[]) AND (assistant <> $2::jsonb OR tool_messages <> '[]'::jsonb)`,
    [runIds, SCRUBBED_STEP],
  );
  return result.rowCount ?? 0;
}

/** Scrubs the runs' rows and steps in one transaction; their totals and status stay. */
async function scrubRows(pool: pg.Pool, tenant: string, runIds: string[]): Promise<{ steps: number }> {
  if (runIds.length === 0) return { steps: 0 };
  return withTransaction(pool, async (client) => {
    const steps = await scrubSteps(client, runIds);
    await client.query(
      `UPDATE runs SET
         request = jsonb_build_object('runId', id, 'tenant', tenant, 'agent', agent, 'priority', priority,
           'forgotten', true),
         output = NULL,
         plan = NULL,
         plan_reason = CASE WHEN plan_reason IS NULL THEN NULL ELSE $3 END,
         error = CASE WHEN error IS NULL THEN NULL ELSE jsonb_build_object(
           'code', COALESCE(error->'code', '"internal"'::jsonb), 'message', $3::text,
           'retryable', COALESCE(error->'retryable', 'false'::jsonb)) END,
         thread_id = NULL,
         user_id = NULL,
         updated_at = now()
       WHERE tenant = $1 AND id = ANY($2::text[])`,
      [tenant, runIds, FORGOTTEN],
    );
    return { steps };
  });
}

function unique(values: (string | null)[]): string[] {
  return [...new Set(values.filter((value): value is string => value !== null))];
}

/** A user's runs are found by index (a partial one: runs without a user are not in it). */
export const FORGET_MIGRATIONS = [
  "CREATE INDEX IF NOT EXISTS runs_tenant_user ON runs (tenant, user_id) WHERE user_id IS NOT NULL",
];

/** Serves `run.forget` in the orchestrator's queue group, a few at a time (it is heavy and rare). */
export async function serveRunForget(deps: ForgetRunsDeps, maxInFlight = 4): Promise<void> {
  await migrate(deps.pool, "orchestrator-forget", FORGET_MIGRATIONS);
  deps.bus.serve(Endpoints.runForget, (request) => forgetRuns(deps, request), {
    queue: QueueGroups.orchestrator,
    maxInFlight,
  });
}
