import { describe, expect, it } from "vitest";
import { StatsSeriesBody } from "./api-schemas.js";
import type { dashboardStats } from "./stats-query.js";
import { statsSeriesView } from "./stats-view.js";

type DashboardStats = Awaited<ReturnType<typeof dashboardStats>>;

const series = (label: string, value: number) => [{ label, values: [value, null] }];
/** Every number different, so a field mapped from the wrong one shows. */
const stats: DashboardStats = {
  tenant: "acme",
  range: "1h",
  tier: "minute",
  stepSeconds: 60,
  times: [1_000_000, 1_000_060],
  latency: { byService: series("ingress p95", 1), byAgent: series("assistant p95", 2) },
  tokens: { model: series("gpt", 3), agent: series("assistant", 4), tenant: series("acme", 5) },
  costUsd: { model: series("gpt", 6), agent: series("assistant", 7), tenant: series("acme", 8) },
  errorRate: series("ingress 429", 9),
  throughput: series("ingress", 10),
  queue: series("batch pending", 11),
  shed: series("ingress", 12),
  totals: { calls: 13, errors: 14, tokens: 15, costUsd: 16, requests: 17, refused: 18 },
  hotspots: [{ kind: "agent", name: "slowpoke", calls: 19, p95Ms: 20, errorRate: 21, costUsd: 22 }],
  cacheSavings: [{ cache: "provider prompt", hits: 23, calls: 24, tokens: 25, savedUsd: 26 }],
  queryMs: 27,
};

describe("statsSeriesView", () => {
  it("answers the dashboard's stats in snake_case, each value from its own field", () => {
    const body = statsSeriesView(stats);
    expect(StatsSeriesBody.strict().parse(body)).toEqual(body);
    expect(body).toEqual({
      tenant: "acme",
      range: "1h",
      tier: "minute",
      step_seconds: 60,
      times: [1_000_000, 1_000_060],
      latency: { by_service: series("ingress p95", 1), by_agent: series("assistant p95", 2) },
      tokens: { model: series("gpt", 3), agent: series("assistant", 4), tenant: series("acme", 5) },
      cost_usd: { model: series("gpt", 6), agent: series("assistant", 7), tenant: series("acme", 8) },
      error_rate: series("ingress 429", 9),
      throughput: series("ingress", 10),
      queue: series("batch pending", 11),
      shed: series("ingress", 12),
      totals: { calls: 13, errors: 14, tokens: 15, cost_usd: 16, requests: 17, refused: 18 },
      hotspots: [{ kind: "agent", name: "slowpoke", calls: 19, p95_ms: 20, error_rate: 21, cost_usd: 22 }],
      cache_savings: [{ cache: "provider prompt", hits: 23, calls: 24, tokens: 25, saved_usd: 26 }],
      query_ms: 27,
    });
  });

  it("lists the tenants to pick from when given (admin keys)", () => {
    expect(statsSeriesView(stats, ["acme", "globex"]).tenants).toEqual(["acme", "globex"]);
    expect(statsSeriesView(stats)).not.toHaveProperty("tenants");
  });
});
