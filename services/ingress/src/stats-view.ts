import type { StatsSeriesBody } from "./api-schemas.js";
import type { dashboardStats } from "./stats-query.js";

/*
 * The dashboard's stats are computed in camelCase (dashboardStats, read by the benchmarks too);
 * `GET /v1/stats/series` answers in snake_case like every JSON body of the API, mapped here once.
 */

type DashboardStats = Awaited<ReturnType<typeof dashboardStats>>;

/** The body of `GET /v1/stats/series`: the dashboard's stats, and the tenants an admin key may pick. */
export function statsSeriesView(stats: DashboardStats, tenants?: string[]): StatsSeriesBody {
  return {
    tenant: stats.tenant,
    range: stats.range,
    tier: stats.tier,
    step_seconds: stats.stepSeconds,
    times: stats.times,
    latency: { by_service: stats.latency.byService, by_agent: stats.latency.byAgent },
    tokens: stats.tokens,
    cost_usd: stats.costUsd,
    error_rate: stats.errorRate,
    throughput: stats.throughput,
    queue: stats.queue,
    shed: stats.shed,
    totals: {
      calls: stats.totals.calls,
      errors: stats.totals.errors,
      tokens: stats.totals.tokens,
      cost_usd: stats.totals.costUsd,
      requests: stats.totals.requests,
      refused: stats.totals.refused,
    },
    hotspots: stats.hotspots.map((hotspot) => ({
      kind: hotspot.kind,
      name: hotspot.name,
      calls: hotspot.calls,
      p95_ms: hotspot.p95Ms,
      error_rate: hotspot.errorRate,
      cost_usd: hotspot.costUsd,
    })),
    cache_savings: stats.cacheSavings.map((saving) => ({
      cache: saving.cache,
      hits: saving.hits,
      calls: saving.calls,
      tokens: saving.tokens,
      saved_usd: saving.savedUsd,
    })),
    query_ms: stats.queryMs,
    ...(tenants ? { tenants } : {}),
  };
}
