import type {
  AssistantMessage,
  RunRequest,
  RunStatus,
  TokenUsage,
  WireError,
} from "@agent-runtime/contracts";
import { RuntimeError, retryUntilDeadline } from "@agent-runtime/contracts";
import { BatchedWrites } from "@agent-runtime/stores";
import type pg from "pg";
import type { RecordedStep, StepDetails } from "./run-store.js";

/** What a run's row says after an entry: its status and totals as the worker holding it knows them. */
export interface RunState {
  request: RunRequest;
  status: RunStatus;
  attempt: number;
  /** Epoch ms when the run first started. */
  startedAt: number;
  steps: number;
  usage: TokenUsage;
  costUsd: number;
  output?: AssistantMessage | undefined;
  error?: WireError | undefined;
}

/** One journal entry: the run's row (upserted) and, when a step ended, that step. */
export interface JournalEntry {
  run: RunState;
  step?: { recorded: RecordedStep; details?: StepDetails | undefined };
  /**
   * Replace what Postgres cannot hold in JSON (NUL, lone surrogate halves) with U+FFFD: used only to
   * record that a run failed after its data as given was refused.
   */
  scrub?: boolean;
  /**
   * Names this write when it ends the run: the row keeps the name of the write that ended it, so
   * of two workers finishing the same run (a redelivery racing a slow worker) exactly one learns
   * that it did, and only that one announces the outcome.
   */
  finishToken?: string;
  /** Commit this entry synchronously even when the journal commits asynchronously. */
  durable?: boolean;
}

/** A run's row after an entry: its status, and which finishing write ended it (if one did). */
export interface Written {
  status: RunStatus;
  finishedBy: string | null;
}

const TERMINAL = "('completed', 'failed', 'cancelled', 'budget_exceeded')";

/** How long `flushed()` callers gather before one flush covers them all. */
const FLUSH_GATHER_MS = 50;

/** How a journal batch commits: `async` returns before the WAL is flushed (see `Journal`). */
export type JournalCommit = "async" | "durable";

/**
 * The run journal: every fact of a run (its start, each step, its end with the final step) is one
 * entry, and the entries of all runs in flight are written together (`BatchedWrites`): while one
 * batch commits, the next gathers, so N concurrent runs cost one transaction per batch, not N. A
 * batch is one prepared statement (one round trip, one plan kept per connection) whatever its size;
 * a batch holds one entry per run (a second entry of a run waits for the next batch, so a run's
 * entries land in order). An entry that cannot be stored (bad data) fails alone: a failed batch is
 * written again entry by entry.
 *
 * With `commit: "async"` a batch commits without waiting for its WAL to reach the disk (Postgres
 * `synchronous_commit = off` for that transaction): the row is visible to every reader at once, and
 * a Postgres crash before the WAL writer flushes it (within a few hundred milliseconds) loses it. Whoever must not lose an entry
 * waits for `flushed()` before acting on it (the run consumer acknowledges a run's message only
 * then, so a lost end is run again from its message); an entry marked `durable` commits
 * synchronously.
 *
 * Writes are idempotent and monotonic: a finished run's status never changes (a cancel wins over a
 * late finish), totals only grow, a step is recorded once, so any replica may write any entry again.
 */
export class Journal {
  private readonly writer: BatchedWrites<JournalEntry, Written>;
  private readonly flushWaiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  private flushWaiting = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: {
      maxBatch?: number;
      commit?: JournalCommit;
      /** Called before each flush is asked for (fault tests). */
      beforeFlush?: () => void;
    } = {},
  ) {
    this.writer = new BatchedWrites({
      write: (entries) => this.run(entries),
      keyOf: (entry) => entry.run.request.runId,
      isDataError: isPermanent,
      maxBatch: options.maxBatch ?? 256,
    });
  }

  /** Statements written (for tests and metrics). */
  get batches(): number {
    return this.writer.writes;
  }

  /** Resolves with the run's status after the write (a terminal status already stored wins). */
  write(entry: JournalEntry): Promise<Written> {
    return this.writer.add(entry);
  }

  /**
   * Writes the entry, retrying transient store errors until `deadline` (see `retryTransient`).
   */
  writeDurably(entry: JournalEntry, deadline: number, signal?: AbortSignal): Promise<Written> {
    return retryTransient(() => this.write(entry), deadline, signal);
  }

  /**
   * Resolves once every entry this journal wrote before the call is on disk (at once when batches
   * commit durably). Callers share the work: while one flush is in flight the next callers gather,
   * and one small synchronous commit (a WAL message, no table touched) flushes everything written
   * before it, as Postgres flushes the WAL in order.
   */
  flushed(): Promise<void> {
    if ((this.options.commit ?? "durable") === "durable") return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.flushWaiters.push({ resolve, reject });
      if (!this.flushWaiting) void this.forceFlush();
    });
  }

  private async forceFlush(): Promise<void> {
    this.flushWaiting = true;
    try {
      while (this.flushWaiters.length > 0) {
        // nobody waits on this but an acknowledgement: a moment's gathering saves commits
        await new Promise((resolve) => setTimeout(resolve, FLUSH_GATHER_MS));
        const waiters = this.flushWaiters.splice(0);
        this.options.beforeFlush?.();
        try {
          await this.pool.query({
            name: "journal-flush",
            text: "SELECT pg_logical_emit_message(true, 'agent-runtime', 'journal flush')",
          });
          for (const waiter of waiters) waiter.resolve();
        } catch (error) {
          for (const waiter of waiters) waiter.reject(error);
        }
      }
    } finally {
      this.flushWaiting = false;
    }
  }

  private async run(entries: JournalEntry[]): Promise<Written[]> {
    const asynchronous =
      (this.options.commit ?? "durable") === "async" && !entries.some((entry) => entry.durable);
    const rows = `[${entries.map(entryJson).join(",")}]`;
    const result = await this.pool.query<{ id: string; status: RunStatus; finished_by: string | null }>(
      asynchronous
        ? { name: "journal-write-async", text: WRITE_ASYNC_SQL, values: [rows] }
        : { name: "journal-write", text: WRITE_SQL, values: [rows] },
    );
    const byRun = new Map(result.rows.map((row) => [row.id, row]));
    return entries.map((entry) => {
      const row = byRun.get(entry.run.request.runId);
      return { status: row?.status ?? "failed", finishedBy: row?.finished_by ?? null };
    });
  }
}

/** JSON text without the escapes jsonb refuses (an escaped backslash before `u` may be hit too: scrub is lossy by design). */
function scrubbed(encoded: string): string {
  return encoded
    .replace(/\\u0000/g, "\\ufffd")
    .replace(/\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})/gi, "\\ufffd")
    .replace(/(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}/gi, "\\ufffd");
}
// a NUL cannot be in a Postgres string (ids and names are checked before they get here)
const LONE_HALF = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const text = (value: string | undefined | null) =>
  value ? value.replaceAll("\u0000", "").replace(LONE_HALF, "\ufffd") : null;
const number = (value: number) => (Number.isFinite(value) ? value : 0);

/** One entry as a row of the write statement (JSON; jsonb columns nested as they are). */
function entryJson({ run, step, scrub, finishToken }: JournalEntry): string {
  const { request } = run;
  const terminal = run.status !== "queued" && run.status !== "running";
  const encoded = JSON.stringify({
    id: request.runId,
    tenant: request.tenant,
    agent: request.agent,
    status: run.status,
    priority: request.priority,
    thread_id: text(request.threadId),
    user_id: text(request.userId),
    parent_run_id: text(request.parentRunId),
    request,
    attempts: number(run.attempt),
    steps: number(run.steps),
    prompt_tokens: number(run.usage.promptTokens),
    completion_tokens: number(run.usage.completionTokens),
    cached_tokens: number(run.usage.cachedTokens),
    cost_usd: number(run.costUsd),
    output: run.output ?? null,
    error: run.error ?? null,
    created_ms: number(request.createdAt),
    started_ms: number(run.startedAt),
    terminal,
    finished_by: terminal ? text(finishToken) : null,
    step: step
      ? {
          step: number(step.recorded.step),
          assistant: step.recorded.assistant,
          tool_messages: step.recorded.toolMessages,
          model: text(step.details?.model),
          provider: text(step.details?.provider),
          prompt_tokens: number(step.recorded.usage.promptTokens),
          completion_tokens: number(step.recorded.usage.completionTokens),
          cached_tokens: number(step.recorded.usage.cachedTokens),
          cost_usd: number(step.recorded.costUsd),
          latency_ms: number(step.details?.latencyMs ?? 0),
          route: text(step.details?.route),
          finish_reason: text(step.recorded.finishReason ?? step.details?.finishReason),
        }
      : null,
  });
  return scrub ? scrubbed(encoded) : encoded;
}

/**
 * One batch, one statement: each run's row is inserted or brought up to its entry (a terminal
 * status already stored is kept), and its step, if any, is recorded once. A run keeps the
 * `created_at` of its first row (the partition key, see partitions.ts): it is looked up, and only a
 * run with no row takes its request's.
 */
const WRITE_BODY = `entries AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS e(id text, tenant text, agent text, status text, priority text,
      thread_id text, user_id text, parent_run_id text, request jsonb, attempts integer, steps integer,
      prompt_tokens integer, completion_tokens integer, cached_tokens integer, cost_usd double precision,
      output jsonb, error jsonb, created_ms double precision, started_ms double precision, terminal boolean,
      finished_by text, step jsonb)
  ),
  placed AS MATERIALIZED (
    SELECT e.*, COALESCE((SELECT r.created_at FROM runs r WHERE r.id = e.id LIMIT 1),
      to_timestamp(e.created_ms / 1000.0)) AS created_at
      FROM entries e
  ),
  recorded_steps AS (
    INSERT INTO run_steps (run_id, run_created_at, step, assistant, tool_messages, model, provider, prompt_tokens,
        completion_tokens, cached_tokens, cost_usd, latency_ms, route, finish_reason)
      SELECT p.id, p.created_at, (p.step->>'step')::integer, p.step->'assistant', COALESCE(p.step->'tool_messages', '[]'),
        p.step->>'model', p.step->>'provider', (p.step->>'prompt_tokens')::integer,
        (p.step->>'completion_tokens')::integer, (p.step->>'cached_tokens')::integer,
        (p.step->>'cost_usd')::double precision, (p.step->>'latency_ms')::double precision, p.step->>'route',
        p.step->>'finish_reason'
        FROM placed p WHERE p.step IS NOT NULL AND jsonb_typeof(p.step) = 'object'
      ON CONFLICT (run_id, step, run_created_at) DO NOTHING
  )
  INSERT INTO runs (id, tenant, agent, status, priority, thread_id, user_id, parent_run_id, request, attempts,
      steps, prompt_tokens, completion_tokens, cached_tokens, cost_usd, output, error, created_at, started_at,
      finished_at, finished_by)
    SELECT p.id, p.tenant, p.agent, p.status, p.priority, p.thread_id, p.user_id, p.parent_run_id, p.request,
      p.attempts, p.steps, p.prompt_tokens, p.completion_tokens, p.cached_tokens, p.cost_usd,
      CASE WHEN jsonb_typeof(p.output) = 'null' THEN NULL ELSE p.output END,
      CASE WHEN jsonb_typeof(p.error) = 'null' THEN NULL ELSE p.error END,
      p.created_at, to_timestamp(p.started_ms / 1000.0),
      CASE WHEN p.terminal THEN now() END, CASE WHEN p.terminal THEN p.finished_by END
      FROM placed p ORDER BY p.id
    ON CONFLICT (id, created_at) DO UPDATE SET
      status = CASE WHEN runs.status IN ${TERMINAL} THEN runs.status ELSE EXCLUDED.status END,
      output = CASE WHEN runs.status IN ${TERMINAL} THEN runs.output ELSE EXCLUDED.output END,
      error = CASE WHEN runs.status IN ${TERMINAL} THEN runs.error ELSE EXCLUDED.error END,
      finished_at = COALESCE(runs.finished_at, EXCLUDED.finished_at),
      finished_by = CASE WHEN runs.status IN ${TERMINAL} THEN runs.finished_by ELSE EXCLUDED.finished_by END,
      attempts = GREATEST(runs.attempts, EXCLUDED.attempts),
      started_at = COALESCE(runs.started_at, EXCLUDED.started_at),
      steps = GREATEST(runs.steps, EXCLUDED.steps),
      prompt_tokens = GREATEST(runs.prompt_tokens, EXCLUDED.prompt_tokens),
      completion_tokens = GREATEST(runs.completion_tokens, EXCLUDED.completion_tokens),
      cached_tokens = GREATEST(runs.cached_tokens, EXCLUDED.cached_tokens),
      cost_usd = GREATEST(runs.cost_usd, EXCLUDED.cost_usd),
      updated_at = now()
    RETURNING runs.id, runs.status, runs.finished_by`;

const WRITE_SQL = `WITH ${WRITE_BODY}`;
// the same, committed without waiting for the WAL flush: the setting is local to the statement's transaction
const WRITE_ASYNC_SQL = `WITH commit_mode AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)),
  ${WRITE_BODY.replace("FROM entries e\n", "FROM entries e, commit_mode\n")}`;

/**
 * Runs a store operation, retrying transient errors (Postgres restarting, connections refused) with
 * growing, jittered backoff until `deadline`. A permanent error (data the store refuses) throws at
 * once as `validation`; a store still down at the deadline throws `unavailable`.
 */
export async function retryTransient<T>(
  operation: () => Promise<T>,
  deadline: number,
  signal?: AbortSignal,
): Promise<T> {
  try {
    return await retryUntilDeadline(operation, { deadline, signal, baseMs: 50, maxMs: 2000, isPermanent });
  } catch (error) {
    if (isPermanent(error)) {
      throw new RuntimeError("validation", `the run's data cannot be stored: ${messageOf(error)}`, {
        retryable: false,
        cause: error,
      });
    }
    throw new RuntimeError("unavailable", `the run store is unavailable: ${messageOf(error)}`, {
      retryable: true,
      retryAfterMs: 1000,
      cause: error,
    });
  }
}

/**
 * Whether a store error is about the data, not the store: retrying cannot help (SQLSTATE classes
 * 22 data exception, 23 integrity, 42 syntax or access, 54 program limit).
 */
export function isPermanent(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(22|23|42|54)/.test(code);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
