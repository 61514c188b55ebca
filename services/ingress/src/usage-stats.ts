import { type Bus, consume } from "@agent-runtime/bus";
import { ModelUsageRecord, ToolUsageRecord } from "@agent-runtime/contracts";
import type pg from "pg";
import { z } from "zod";

const UsageMessage = z.union([ModelUsageRecord, ToolUsageRecord]);
const SEEN_RETENTION = "31 days"; // longer than the USAGE stream keeps records

/**
 * Folds the USAGE stream into daily aggregates (stats, dashboard, token and cost
 * quotas). Each record counts once: its id is remembered in the same statement.
 */
export async function startUsageAggregation(bus: Bus, pool: pg.Pool): Promise<() => void> {
  await consume(bus, {
    stream: "USAGE",
    durable: "ingress-usage",
    schema: UsageMessage,
    concurrency: 8,
    deadLetterOrigin: "usage",
    handler: async (record) => {
      const isModel = "model" in record;
      const day = new Date(record.ts).toISOString().slice(0, 10);
      await pool.query(
        `WITH fresh AS (
           INSERT INTO usage_seen (id) VALUES ($12) ON CONFLICT DO NOTHING RETURNING 1
         ), counted_run AS (
           INSERT INTO usage_runs (tenant, day, agent, run_id)
           SELECT $1, $2, $5, $13 WHERE $13::text IS NOT NULL AND EXISTS (SELECT 1 FROM fresh)
           ON CONFLICT DO NOTHING
         ), counted_user AS (
           INSERT INTO usage_user_daily (tenant, user_id, day, tokens, cost_usd)
           SELECT $1, $14, $2, $6::bigint + $7::bigint, $8 WHERE $14::text IS NOT NULL AND EXISTS (SELECT 1 FROM fresh)
           ON CONFLICT (tenant, user_id, day) DO UPDATE SET
             tokens = usage_user_daily.tokens + EXCLUDED.tokens,
             cost_usd = usage_user_daily.cost_usd + EXCLUDED.cost_usd
         )
         INSERT INTO usage_daily (tenant, day, kind, name, agent, calls, prompt_tokens, completion_tokens, cost_usd, cache_hits, errors, latency_ms_sum)
         SELECT $1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11 WHERE EXISTS (SELECT 1 FROM fresh)
         ON CONFLICT (tenant, day, kind, name, agent) DO UPDATE SET
           calls = usage_daily.calls + 1,
           prompt_tokens = usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
           completion_tokens = usage_daily.completion_tokens + EXCLUDED.completion_tokens,
           cost_usd = usage_daily.cost_usd + EXCLUDED.cost_usd,
           cache_hits = usage_daily.cache_hits + EXCLUDED.cache_hits,
           errors = usage_daily.errors + EXCLUDED.errors,
           latency_ms_sum = usage_daily.latency_ms_sum + EXCLUDED.latency_ms_sum`,
        [
          record.tenant,
          day,
          isModel ? `model-${record.kind}` : "tool",
          isModel ? record.model : record.tool,
          record.agent ?? "",
          isModel ? (record.cached ? 0 : record.usage.promptTokens) : 0,
          isModel ? (record.cached ? 0 : record.usage.completionTokens) : 0,
          record.costUsd,
          record.cached ? 1 : 0,
          record.status === "ok" ? 0 : 1,
          record.latencyMs,
          record.id,
          record.runId ?? null,
          record.userId ?? null,
        ],
      );
    },
  });
  const prune = setInterval(() => {
    void pool
      .query(`DELETE FROM usage_seen WHERE at < now() - interval '${SEEN_RETENTION}'`)
      .catch(() => undefined);
  }, 3600_000);
  prune.unref();
  return () => clearInterval(prune);
}

/** Usage of one tenant (or of every tenant with `tenant` undefined) over the last `days` UTC days. */
export async function usageStats(pool: pg.Pool, tenant: string | undefined, days: number) {
  const since = "(now() AT TIME ZONE 'UTC')::date - $1::int";
  const filter = tenant === undefined ? "" : "AND tenant = $2";
  const parameters = tenant === undefined ? [days] : [days, tenant];
  const [rows, runs] = await Promise.all([
    pool.query(
      `SELECT tenant, kind, name, agent, sum(calls)::bigint AS calls, sum(prompt_tokens)::bigint AS prompt_tokens,
              sum(completion_tokens)::bigint AS completion_tokens, sum(cost_usd) AS cost_usd, sum(cache_hits)::bigint AS cache_hits,
              sum(errors)::bigint AS errors, CASE WHEN sum(calls) > 0 THEN sum(latency_ms_sum) / sum(calls) ELSE 0 END AS avg_latency_ms
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
  const items = rows.rows.map((row) => ({
    tenant: row.tenant as string,
    kind: row.kind as string,
    name: row.name as string,
    agent: row.agent as string,
    calls: Number(row.calls),
    promptTokens: Number(row.prompt_tokens),
    completionTokens: Number(row.completion_tokens),
    costUsd: Number(row.cost_usd),
    cacheHits: Number(row.cache_hits),
    errors: Number(row.errors),
    avgLatencyMs: Math.round(Number(row.avg_latency_ms) * 10) / 10,
  }));
  const runsByAgent = runs.rows.map((row) => ({
    tenant: row.tenant as string,
    agent: row.agent as string,
    runs: Number(row.runs),
  }));
  const totals = {
    runs: runsByAgent.reduce((sum, entry) => sum + entry.runs, 0),
    calls: 0,
    tokens: 0,
    costUsd: 0,
    cacheHits: 0,
    errors: 0,
    avgLatencyMs: 0,
  };
  let latencyMsSum = 0;
  for (const item of items) {
    totals.calls += item.calls;
    totals.tokens += item.promptTokens + item.completionTokens;
    totals.costUsd += item.costUsd;
    totals.cacheHits += item.cacheHits;
    totals.errors += item.errors;
    latencyMsSum += item.avgLatencyMs * item.calls;
  }
  totals.avgLatencyMs = totals.calls > 0 ? Math.round((latencyMsSum / totals.calls) * 10) / 10 : 0;
  return {
    tenant: tenant ?? "*",
    days,
    totals,
    runs: runsByAgent,
    items,
  };
}
