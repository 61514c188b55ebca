import { type Bus, consume } from "@agent-runtime/bus";
import { Consumers, ModelUsageRecord, ToolUsageRecord } from "@agent-runtime/contracts";
import { withTransaction } from "@agent-runtime/stores";
import { withSpan } from "@agent-runtime/telemetry";
import type pg from "pg";
import { z } from "zod";
import type { TenantUsageBody, UsageItem } from "./api-schemas.js";
import { migrateRouteStats, writeRouteStats } from "./route-stats.js";
import { IntervalBatcher } from "./stats-batcher.js";
import { migrateRollups, pruneRollups, type RollupSample, writeRollups } from "./stats-rollups.js";

const UsageMessage = z.union([ModelUsageRecord, ToolUsageRecord]);
const SEEN_RETENTION = "31 days"; // longer than the USAGE stream keeps records

type UsageMessage = z.infer<typeof UsageMessage>;

/** Usage is written at most once per this interval (per ingress replica), in one transaction. */
const FLUSH_MS = 1000;
/** Records held unacknowledged at once: more than the USAGE stream brings in one interval. */
const MAX_PENDING = 10_000;

/**
 * Folds the USAGE stream into daily aggregates (stats, token and cost quotas) and the
 * rollups of the dashboard (stats-rollups.ts). Records are summed in memory and written at
 * most once a second, all that arrived since in one transaction (one multi-row upsert per
 * table), and each is acknowledged only once that transaction committed: a crash before it
 * loses nothing (JetStream delivers the records again). Each record counts once: its id is
 * remembered in the same transaction, so a record delivered again after its transaction
 * committed (its ack was lost) is recognised and left out.
 */
export async function startUsageAggregation(bus: Bus, pool: pg.Pool): Promise<() => void> {
  await migrateRollups(pool);
  await migrateRouteStats(pool);
  // one write holds records of many turns: its spans (and its queries') are a trace of their own
  const batcher = new IntervalBatcher<UsageMessage>(
    (records) =>
      withSpan("write usage", () => withTransaction(pool, (client) => writeUsage(client, records)), {
        root: true,
        attributes: { "agent_runtime.usage.records": records.length },
      }),
    FLUSH_MS,
  );
  await consume(bus, {
    stream: "USAGE",
    durable: Consumers.usage,
    schema: UsageMessage,
    concurrency: MAX_PENDING,
    deadLetterOrigin: "usage",
    handler: (record) => batcher.add(record),
  });
  const prune = setInterval(() => {
    void pool
      .query(`DELETE FROM usage_seen WHERE at < now() - interval '${SEEN_RETENTION}'`)
      .catch(() => undefined);
    void pruneRollups(pool).catch(() => undefined);
  }, 3600_000);
  prune.unref();
  return () => clearInterval(prune);
}

/** Sums of one aggregate row. */
interface Sums {
  calls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  /** Paid calls of a model with no price (their cost is unknown, not 0). */
  unpricedCalls: number;
  cacheHits: number;
  errors: number;
  latencyMsSum: number;
}

/** Writes records not seen before into the daily aggregates (four statements, whatever the count). */
async function writeUsage(client: pg.PoolClient, records: UsageMessage[]): Promise<void> {
  const fresh = await client.query<{ id: string }>(
    "INSERT INTO usage_seen (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING id",
    [records.map((record) => record.id).sort()],
  );
  const freshIds = new Set(fresh.rows.map((row) => row.id));
  const daily = new Map<string, { key: string[]; sums: Sums }>();
  const users = new Map<string, { key: string[]; tokens: number; costUsd: number }>();
  const runs = new Map<string, string[]>();
  const samples: RollupSample[] = [];
  const freshRecords: UsageMessage[] = [];
  for (const record of records) {
    if (!freshIds.has(record.id)) continue;
    freshIds.delete(record.id); // the same record twice in one batch counts once
    freshRecords.push(record);
    samples.push(...rollupSamples(record));
    const isModel = "model" in record;
    const day = new Date(record.ts).toISOString().slice(0, 10);
    const agent = record.agent ?? "";
    const promptTokens = isModel && !record.cached ? record.usage.promptTokens : 0;
    const completionTokens = isModel && !record.cached ? record.usage.completionTokens : 0;
    const key = [
      record.tenant,
      day,
      isModel ? `model-${record.kind}` : "tool",
      isModel ? record.model : record.tool,
      agent,
    ];
    const row = daily.get(key.join("\u0000")) ?? {
      key,
      sums: {
        calls: 0,
        promptTokens: 0,
        completionTokens: 0,
        costUsd: 0,
        unpricedCalls: 0,
        cacheHits: 0,
        errors: 0,
        latencyMsSum: 0,
      },
    };
    row.sums.calls += 1;
    row.sums.promptTokens += promptTokens;
    row.sums.completionTokens += completionTokens;
    row.sums.costUsd += record.costUsd;
    row.sums.unpricedCalls +=
      isModel && !record.cached && record.status === "ok" && record.priced === false ? 1 : 0;
    row.sums.cacheHits += record.cached ? 1 : 0;
    row.sums.errors += record.status === "ok" ? 0 : 1;
    row.sums.latencyMsSum += record.latencyMs;
    daily.set(key.join("\u0000"), row);
    if (record.userId) {
      const userKey = [record.tenant, record.userId, day];
      const user = users.get(userKey.join("\u0000")) ?? { key: userKey, tokens: 0, costUsd: 0 };
      user.tokens += promptTokens + completionTokens;
      user.costUsd += record.costUsd;
      users.set(userKey.join("\u0000"), user);
    }
    if (record.runId)
      runs.set([record.tenant, day, agent, record.runId].join("\u0000"), [
        record.tenant,
        day,
        agent,
        record.runId,
      ]);
  }
  const column = <T>(rows: T[], pick: (row: T) => unknown) => rows.map(pick);
  // rows in key order: concurrent batches lock shared rows in the same order and never deadlock
  const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const dailyRows = [...daily.entries()].sort(([a], [b]) => byKey(a, b)).map(([, row]) => row);
  if (dailyRows.length > 0) {
    await client.query(
      `INSERT INTO usage_daily (tenant, day, kind, name, agent, calls, prompt_tokens, completion_tokens, cost_usd, cache_hits, errors, latency_ms_sum, unpriced_calls)
       SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[],
         $9::float8[], $10::bigint[], $11::bigint[], $12::float8[], $13::bigint[])
       ON CONFLICT (tenant, day, kind, name, agent) DO UPDATE SET
         calls = usage_daily.calls + EXCLUDED.calls,
         prompt_tokens = usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
         completion_tokens = usage_daily.completion_tokens + EXCLUDED.completion_tokens,
         cost_usd = usage_daily.cost_usd + EXCLUDED.cost_usd,
         cache_hits = usage_daily.cache_hits + EXCLUDED.cache_hits,
         errors = usage_daily.errors + EXCLUDED.errors,
         latency_ms_sum = usage_daily.latency_ms_sum + EXCLUDED.latency_ms_sum,
         unpriced_calls = usage_daily.unpriced_calls + EXCLUDED.unpriced_calls`,
      [
        ...[0, 1, 2, 3, 4].map((index) => column(dailyRows, (row) => row.key[index])),
        column(dailyRows, (row) => row.sums.calls),
        column(dailyRows, (row) => row.sums.promptTokens),
        column(dailyRows, (row) => row.sums.completionTokens),
        column(dailyRows, (row) => row.sums.costUsd),
        column(dailyRows, (row) => row.sums.cacheHits),
        column(dailyRows, (row) => row.sums.errors),
        column(dailyRows, (row) => row.sums.latencyMsSum),
        column(dailyRows, (row) => row.sums.unpricedCalls),
      ],
    );
  }
  const userRows = [...users.entries()].sort(([a], [b]) => byKey(a, b)).map(([, row]) => row);
  if (userRows.length > 0) {
    await client.query(
      `INSERT INTO usage_user_daily (tenant, user_id, day, tokens, cost_usd)
       SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::bigint[], $5::float8[])
       ON CONFLICT (tenant, user_id, day) DO UPDATE SET
         tokens = usage_user_daily.tokens + EXCLUDED.tokens,
         cost_usd = usage_user_daily.cost_usd + EXCLUDED.cost_usd`,
      [
        ...[0, 1, 2].map((index) => column(userRows, (row) => row.key[index])),
        column(userRows, (row) => row.tokens),
        column(userRows, (row) => row.costUsd),
      ],
    );
  }
  await writeRollups(client, samples);
  await writeRouteStats(client, freshRecords);
  const runRows = [...runs.entries()].sort(([a], [b]) => byKey(a, b)).map(([, row]) => row);
  if (runRows.length > 0) {
    await client.query(
      `INSERT INTO usage_runs (tenant, day, agent, run_id)
       SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`,
      [0, 1, 2, 3].map((index) => column(runRows, (row) => row[index])),
    );
  }
}

/** A usage record as rollup samples: the call itself, and its user's share when it names one. */
export function rollupSamples(record: UsageMessage): RollupSample[] {
  const isModel = "model" in record;
  const error = record.status !== "ok";
  const code = isModel ? (error ? (record.errorCode ?? "error") : "ok") : record.status;
  const paid = isModel && !record.cached;
  const sample: RollupSample = {
    at: record.ts,
    tenant: record.tenant,
    service: isModel ? "model-proxy" : "tool-executor",
    kind: isModel ? `model-${record.kind}` : "tool",
    name: isModel ? record.model : record.tool,
    agent: record.agent ?? "",
    code,
    latencyMs: record.latencyMs,
    error,
    promptTokens: paid ? record.usage.promptTokens : 0,
    completionTokens: paid ? record.usage.completionTokens : 0,
    cachedTokens: paid ? record.usage.cachedTokens : 0,
    promptCacheSavedUsd: paid ? (record.promptCacheSavedUsd ?? 0) : 0,
    promptCacheHit: paid && record.usage.cachedTokens > 0,
    costUsd: record.costUsd,
    cacheHit: record.cached,
  };
  if (!record.userId) return [sample];
  return [
    sample,
    { ...sample, service: "users", kind: "user", name: record.userId, code: error ? "error" : "ok" },
  ];
}

/**
 * Usage of one tenant (or of every tenant with `tenant` undefined) over the last `days` UTC days,
 * as `/v1/stats` and the admin usage route answer it (snake_case, like every JSON body).
 */
export async function usageStats(
  pool: pg.Pool,
  tenant: string | undefined,
  days: number,
): Promise<TenantUsageBody> {
  const since = "(now() AT TIME ZONE 'UTC')::date - $1::int";
  const filter = tenant === undefined ? "" : "AND tenant = $2";
  const parameters = tenant === undefined ? [days] : [days, tenant];
  const [rows, runs] = await Promise.all([
    pool.query(
      `SELECT tenant, kind, name, agent, sum(calls)::bigint AS calls, sum(prompt_tokens)::bigint AS prompt_tokens,
              sum(completion_tokens)::bigint AS completion_tokens, sum(cost_usd) AS cost_usd, sum(cache_hits)::bigint AS cache_hits,
              sum(errors)::bigint AS errors, sum(unpriced_calls)::bigint AS unpriced_calls, CASE WHEN sum(calls) > 0 THEN sum(latency_ms_sum) / sum(calls) ELSE 0 END AS avg_latency_ms
       FROM usage_daily WHERE day > ${since} ${filter}
       GROUP BY tenant, kind, name, agent ORDER BY cost_usd DESC, calls DESC LIMIT 1000`,
      parameters,
    ),
    pool.query(
      `SELECT tenant, agent, count(*)::bigint AS runs FROM usage_runs WHERE day > ${since} ${filter}
       GROUP BY tenant, agent ORDER BY runs DESC LIMIT 1000`,
      parameters,
    ),
  ]);
  const items = rows.rows.map((row): UsageItem => {
    const calls = Number(row.calls);
    const unpricedCalls = Number(row.unpriced_calls);
    const paidCalls = calls - Number(row.cache_hits) - Number(row.errors);
    return {
      tenant: row.tenant as string,
      kind: row.kind as string,
      name: row.name as string,
      agent: row.agent as string,
      calls,
      prompt_tokens: Number(row.prompt_tokens),
      completion_tokens: Number(row.completion_tokens),
      // every paid call unpriced: the cost is unknown, never shown as $0
      cost_usd: unpricedCalls > 0 && unpricedCalls >= paidCalls ? null : Number(row.cost_usd),
      unpriced_calls: unpricedCalls,
      cache_hits: Number(row.cache_hits),
      errors: Number(row.errors),
      avg_latency_ms: Math.round(Number(row.avg_latency_ms) * 10) / 10,
    };
  });
  const runsByAgent = runs.rows.map((row) => ({
    tenant: row.tenant as string,
    agent: row.agent as string,
    runs: Number(row.runs),
  }));
  const totals: TenantUsageBody["totals"] = {
    runs: runsByAgent.reduce((sum, entry) => sum + entry.runs, 0),
    calls: 0,
    tokens: 0,
    /** USD of the priced calls: a lower bound while `unpriced_calls` > 0. */
    cost_usd: 0,
    unpriced_calls: 0,
    cache_hits: 0,
    errors: 0,
    avg_latency_ms: 0,
  };
  let latencyMsSum = 0;
  for (const item of items) {
    totals.calls += item.calls;
    totals.tokens += item.prompt_tokens + item.completion_tokens;
    totals.cost_usd += item.cost_usd ?? 0;
    totals.unpriced_calls += item.unpriced_calls;
    totals.cache_hits += item.cache_hits;
    totals.errors += item.errors;
    latencyMsSum += item.avg_latency_ms * item.calls;
  }
  totals.avg_latency_ms = totals.calls > 0 ? Math.round((latencyMsSum / totals.calls) * 10) / 10 : 0;
  return {
    tenant: tenant ?? "*",
    days,
    totals,
    runs: runsByAgent,
    items,
  };
}
