import type { ModelUsageRecord } from "@agent-runtime/contracts";
import { migrate } from "@agent-runtime/stores";
import type pg from "pg";
import type { RouteUsageItem, UsageStatsBody } from "./api-schemas.js";

/**
 * Model usage per route and A/B variant, by day: what `/v1/stats` shows under `routes` and
 * `variants`, so two variants of an agent (two models, two prompts) can be compared on cost,
 * tokens, latency, cache hits and errors. `route` is the usage record's route (the step's task:
 * `answer`, `act`, `plan`, …), `tier` the tier it was routed to, `variant` the A/B arm ('' for
 * none). Rows are written in the same transaction as the other daily aggregates, so each usage
 * record counts once.
 */
export const ROUTE_STATS_MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS usage_route_daily (
     tenant text NOT NULL,
     day date NOT NULL,
     agent text NOT NULL,
     route text NOT NULL,
     tier text NOT NULL,
     variant text NOT NULL,
     calls bigint NOT NULL DEFAULT 0,
     prompt_tokens bigint NOT NULL DEFAULT 0,
     cached_tokens bigint NOT NULL DEFAULT 0,
     completion_tokens bigint NOT NULL DEFAULT 0,
     cost_usd double precision NOT NULL DEFAULT 0,
     cache_hits bigint NOT NULL DEFAULT 0,
     errors bigint NOT NULL DEFAULT 0,
     latency_ms_sum double precision NOT NULL DEFAULT 0,
     PRIMARY KEY (tenant, day, agent, route, tier, variant)
   )`,
];

export async function migrateRouteStats(pool: pg.Pool): Promise<void> {
  await migrate(pool, "ingress-route-stats", ROUTE_STATS_MIGRATIONS);
}

interface RouteRow {
  key: [string, string, string, string, string, string];
  calls: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  costUsd: number;
  cacheHits: number;
  errors: number;
  latencyMsSum: number;
}

/** Sums chat records per (tenant, day, agent, route, tier, variant); other records are skipped. */
export function routeRows(records: readonly unknown[]): RouteRow[] {
  const rows = new Map<string, RouteRow>();
  for (const record of records) {
    if (!isChatRecord(record)) continue;
    const key: RouteRow["key"] = [
      record.tenant,
      new Date(record.ts).toISOString().slice(0, 10),
      record.agent ?? "",
      record.route,
      record.tier,
      record.variant ?? "",
    ];
    const id = key.join("\u0000");
    const row = rows.get(id) ?? {
      key,
      calls: 0,
      promptTokens: 0,
      cachedTokens: 0,
      completionTokens: 0,
      costUsd: 0,
      cacheHits: 0,
      errors: 0,
      latencyMsSum: 0,
    };
    // a response-cache hit costs nothing and sends no tokens
    const paid = !record.cached;
    row.calls += 1;
    row.promptTokens += paid ? record.usage.promptTokens : 0;
    row.cachedTokens += paid ? record.usage.cachedTokens : 0;
    row.completionTokens += paid ? record.usage.completionTokens : 0;
    row.costUsd += record.costUsd;
    row.cacheHits += record.cached ? 1 : 0;
    row.errors += record.status === "ok" ? 0 : 1;
    row.latencyMsSum += record.latencyMs;
    rows.set(id, row);
  }
  // key order: concurrent batches lock shared rows in the same order and never deadlock
  return [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
}

function isChatRecord(record: unknown): record is ModelUsageRecord {
  return (
    typeof record === "object" &&
    record !== null &&
    "model" in record &&
    (record as { kind?: unknown }).kind === "chat"
  );
}

/** Adds records (already known to be new) to the route rows, in the caller's transaction. */
export async function writeRouteStats(client: pg.PoolClient, records: readonly unknown[]): Promise<void> {
  const rows = routeRows(records);
  if (rows.length === 0) return;
  const column = (pick: (row: RouteRow) => unknown) => rows.map(pick);
  await client.query(
    `INSERT INTO usage_route_daily (tenant, day, agent, route, tier, variant, calls, prompt_tokens, cached_tokens,
       completion_tokens, cost_usd, cache_hits, errors, latency_ms_sum)
     SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
       $8::bigint[], $9::bigint[], $10::bigint[], $11::float8[], $12::bigint[], $13::bigint[], $14::float8[])
     ON CONFLICT (tenant, day, agent, route, tier, variant) DO UPDATE SET
       calls = usage_route_daily.calls + EXCLUDED.calls,
       prompt_tokens = usage_route_daily.prompt_tokens + EXCLUDED.prompt_tokens,
       cached_tokens = usage_route_daily.cached_tokens + EXCLUDED.cached_tokens,
       completion_tokens = usage_route_daily.completion_tokens + EXCLUDED.completion_tokens,
       cost_usd = usage_route_daily.cost_usd + EXCLUDED.cost_usd,
       cache_hits = usage_route_daily.cache_hits + EXCLUDED.cache_hits,
       errors = usage_route_daily.errors + EXCLUDED.errors,
       latency_ms_sum = usage_route_daily.latency_ms_sum + EXCLUDED.latency_ms_sum`,
    [
      ...[0, 1, 2, 3, 4, 5].map((index) => column((row) => row.key[index])),
      column((row) => row.calls),
      column((row) => row.promptTokens),
      column((row) => row.cachedTokens),
      column((row) => row.completionTokens),
      column((row) => row.costUsd),
      column((row) => row.cacheHits),
      column((row) => row.errors),
      column((row) => row.latencyMsSum),
    ],
  );
}

/**
 * Chat usage over the last `days` UTC days of one tenant (every tenant when undefined), grouped by
 * agent, route and tier (`routes`) and by agent and variant (`variants`, calls with a variant only).
 */
export async function routeStats(
  pool: pg.Pool,
  tenant: string | undefined,
  days: number,
): Promise<Pick<UsageStatsBody, "routes" | "variants">> {
  const since = "(now() AT TIME ZONE 'UTC')::date - $1::int";
  const filter = tenant === undefined ? "" : "AND tenant = $2";
  const parameters = tenant === undefined ? [days] : [days, tenant];
  const sums = `sum(calls)::bigint AS calls, sum(prompt_tokens)::bigint AS prompt_tokens,
    sum(cached_tokens)::bigint AS cached_tokens, sum(completion_tokens)::bigint AS completion_tokens,
    sum(cost_usd) AS cost_usd, sum(cache_hits)::bigint AS cache_hits, sum(errors)::bigint AS errors,
    CASE WHEN sum(calls) > 0 THEN sum(latency_ms_sum) / sum(calls) ELSE 0 END AS avg_latency_ms`;
  // one statement: both groupings come from the same snapshot and agree on the totals
  const grouped = await pool.query(
    `SELECT tenant, agent, route, tier, variant, GROUPING(variant) AS by_route, ${sums}
     FROM usage_route_daily WHERE day > ${since} ${filter}
     GROUP BY GROUPING SETS ((tenant, agent, route, tier), (tenant, agent, variant))
     ORDER BY by_route DESC, cost_usd DESC, calls DESC LIMIT 2000`,
    parameters,
  );
  const routes = grouped.rows.filter((row) => Number(row.by_route) === 1);
  const variants = grouped.rows
    .filter((row) => Number(row.by_route) === 0 && row.variant !== "")
    .sort((a, b) =>
      `${a.tenant}\u0000${a.agent}\u0000${a.variant}` < `${b.tenant}\u0000${b.agent}\u0000${b.variant}`
        ? -1
        : 1,
    );
  const item = (row: Record<string, unknown>, group: "route" | "variant"): RouteUsageItem => ({
    tenant: row.tenant as string,
    agent: row.agent as string,
    ...(group === "route" ? { route: row.route as string, tier: row.tier as string } : {}),
    ...(group === "variant" ? { variant: row.variant as string } : {}),
    calls: Number(row.calls),
    prompt_tokens: Number(row.prompt_tokens),
    cached_tokens: Number(row.cached_tokens),
    completion_tokens: Number(row.completion_tokens),
    cost_usd: Number(row.cost_usd),
    cache_hits: Number(row.cache_hits),
    errors: Number(row.errors),
    avg_latency_ms: Math.round(Number(row.avg_latency_ms) * 10) / 10,
  });
  return {
    routes: routes.map((row) => item(row, "route")),
    variants: variants.map((row) => item(row, "variant")),
  };
}
