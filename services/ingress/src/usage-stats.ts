import { type Bus, consume } from "@agent-runtime/bus";
import { ModelUsageRecord, ToolUsageRecord } from "@agent-runtime/contracts";
import type pg from "pg";
import { z } from "zod";

const UsageMessage = z.union([ModelUsageRecord, ToolUsageRecord]);

/** Folds the USAGE stream into daily aggregates (stats, dashboard, token and cost quotas). */
export async function startUsageAggregation(bus: Bus, pool: pg.Pool): Promise<void> {
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
        `INSERT INTO usage_daily (tenant, day, kind, name, agent, calls, prompt_tokens, completion_tokens, cost_usd, cache_hits, errors, latency_ms_sum)
         VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11)
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
        ],
      );
    },
  });
}

export async function tenantStats(pool: pg.Pool, tenant: string, days: number) {
  const rows = await pool.query(
    `SELECT kind, name, agent, sum(calls)::bigint AS calls, sum(prompt_tokens)::bigint AS prompt_tokens,
            sum(completion_tokens)::bigint AS completion_tokens, sum(cost_usd) AS cost_usd, sum(cache_hits)::bigint AS cache_hits,
            sum(errors)::bigint AS errors, CASE WHEN sum(calls) > 0 THEN sum(latency_ms_sum) / sum(calls) ELSE 0 END AS avg_latency_ms
     FROM usage_daily WHERE tenant = $1 AND day > current_date - $2::int
     GROUP BY kind, name, agent ORDER BY cost_usd DESC, calls DESC`,
    [tenant, days],
  );
  const items = rows.rows.map((row) => ({
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
  const totals = items.reduce(
    (sum, item) => ({
      calls: sum.calls + item.calls,
      tokens: sum.tokens + item.promptTokens + item.completionTokens,
      costUsd: sum.costUsd + item.costUsd,
      cacheHits: sum.cacheHits + item.cacheHits,
      errors: sum.errors + item.errors,
    }),
    { calls: 0, tokens: 0, costUsd: 0, cacheHits: 0, errors: 0 },
  );
  return { tenant, days, totals, items };
}
