import type {
  AssistantMessage,
  RunRequest,
  RunStatus,
  TokenUsage,
  WireError,
} from "@agent-runtime/contracts";
import { RuntimeError, retryUntilDeadline } from "@agent-runtime/contracts";
import pg from "pg";
import { runCreatedAt } from "./partitions.js";
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
}

/** A run's row after an entry: its status, and which finishing write ended it (if one did). */
export interface Written {
  status: RunStatus;
  finishedBy: string | null;
}

interface Pending {
  entry: JournalEntry;
  resolve: (written: Written) => void;
  reject: (error: unknown) => void;
}

const TERMINAL = "('completed', 'failed', 'cancelled', 'budget_exceeded')";

/**
 * The run journal: every fact of a run (its start, each step, its end with the final step) is one
 * entry, and the entries of all runs in flight are written together: while one batch commits, the
 * next gathers, so N concurrent runs cost one transaction per batch, not N. A batch is one
 * multi-statement query (one round trip, one implicit transaction). An entry that cannot be
 * stored (bad data) fails alone: a failed batch is written again entry by entry.
 *
 * Writes are idempotent and monotonic: a finished run's status never changes (a cancel wins over a
 * late finish), totals only grow, a step is recorded once, so any replica may write any entry again.
 */
export class Journal {
  private queue: Pending[] = [];
  private flushing = false;
  /** Batches written (for tests and metrics). */
  batches = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly maxBatch = 256,
  ) {}

  /** Resolves with the run's status after the write (a terminal status already stored wins). */
  write(entry: JournalEntry): Promise<Written> {
    return new Promise<Written>((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /**
   * Writes the entry, retrying transient store errors until `deadline` (see `retryTransient`).
   */
  writeDurably(entry: JournalEntry, deadline: number, signal?: AbortSignal): Promise<Written> {
    return retryTransient(() => this.write(entry), deadline, signal);
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        await this.writeBatch(batch);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    this.batches++;
    try {
      const written = await this.run(batch.map((pending) => pending.entry));
      for (const [index, pending] of batch.entries()) pending.resolve(written[index]!);
    } catch (error) {
      if (batch.length === 1 || !isPermanent(error)) {
        for (const pending of batch) pending.reject(error);
        return;
      }
      // one entry spoiled the batch: each goes alone, so only that one fails
      for (const pending of batch) {
        try {
          const [written] = await this.run([pending.entry]);
          pending.resolve(written!);
        } catch (single) {
          pending.reject(single);
        }
      }
    }
  }

  private async run(entries: JournalEntry[]): Promise<Written[]> {
    const statements: string[] = [];
    const statusAt: number[] = [];
    for (const entry of entries) {
      statusAt.push(statements.length);
      statements.push(upsertRun(entry));
      if (entry.step) statements.push(insertStep(entry.run.request.runId, entry.step));
    }
    const result = (await this.pool.query(statements.join(";\n"))) as unknown as
      | pg.QueryResult
      | pg.QueryResult[];
    const results = Array.isArray(result) ? result : [result];
    return statusAt.map((index) => {
      const row = results[index]?.rows[0] as { status: RunStatus; finished_by: string | null } | undefined;
      return { status: row?.status ?? "failed", finishedBy: row?.finished_by ?? null };
    });
  }
}

const literal = (value: string) => pg.escapeLiteral(value);
const json = (value: unknown, scrub = false) => {
  if (value === undefined || value === null) return "NULL";
  const encoded = JSON.stringify(value);
  return `${literal(scrub ? scrubbed(encoded) : encoded)}::jsonb`;
};

/** JSON text without the escapes jsonb refuses (an escaped backslash before `u` may be hit too: scrub is lossy by design). */
function scrubbed(encoded: string): string {
  return encoded
    .replace(/\\u0000/g, "\\ufffd")
    .replace(/\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})/gi, "\\ufffd")
    .replace(/(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}/gi, "\\ufffd");
}
// a NUL cannot be in a Postgres string (ids and names are checked before they get here)
const text = (value: string | undefined | null) => (value ? literal(value.replaceAll("\u0000", "")) : "NULL");
const number = (value: number) => (Number.isFinite(value) ? String(value) : "0");
const epoch = (ms: number) => `to_timestamp(${number(ms)} / 1000.0)`;

/** Inserts the run or brings its row up to this state; a terminal status already stored is kept. */
function upsertRun({ run, scrub, finishToken }: JournalEntry): string {
  const { request } = run;
  const terminal = run.status !== "queued" && run.status !== "running";
  return `INSERT INTO runs (id, tenant, agent, status, priority, thread_id, user_id, parent_run_id, request, attempts,
      steps, prompt_tokens, completion_tokens, cached_tokens, cost_usd, output, error, created_at, started_at, finished_at,
      finished_by)
    VALUES (${literal(request.runId)}, ${literal(request.tenant)}, ${literal(request.agent)}, ${literal(run.status)},
      ${literal(request.priority)}, ${text(request.threadId)}, ${text(request.userId)}, ${text(request.parentRunId)},
      ${json(request, scrub)}, ${number(run.attempt)}, ${number(run.steps)}, ${number(run.usage.promptTokens)},
      ${number(run.usage.completionTokens)}, ${number(run.usage.cachedTokens)}, ${number(run.costUsd)},
      ${json(run.output, scrub)}, ${json(run.error, scrub)}, ${runCreatedAt(literal(request.runId), epoch(request.createdAt))}, ${epoch(run.startedAt)},
      ${terminal ? "now()" : "NULL"}, ${terminal ? text(finishToken) : "NULL"})
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
    RETURNING status, finished_by`;
}

function insertStep(runId: string, { recorded, details }: NonNullable<JournalEntry["step"]>): string {
  return `INSERT INTO run_steps (run_id, run_created_at, step, assistant, tool_messages, model, provider, prompt_tokens,
      completion_tokens, cached_tokens, cost_usd, latency_ms, route, finish_reason)
    VALUES (${literal(runId)}, ${runCreatedAt(literal(runId), "now()")}, ${number(recorded.step)}, ${json(recorded.assistant)}, ${json(recorded.toolMessages)},
      ${text(details?.model)}, ${text(details?.provider)}, ${number(recorded.usage.promptTokens)},
      ${number(recorded.usage.completionTokens)}, ${number(recorded.usage.cachedTokens)}, ${number(recorded.costUsd)},
      ${number(details?.latencyMs ?? 0)}, ${text(details?.route)}, ${text(recorded.finishReason ?? details?.finishReason)})
    ON CONFLICT (run_id, step, run_created_at) DO NOTHING`;
}

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
