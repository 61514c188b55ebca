import { createPool } from "@agent-runtime/stores";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardStats, RANGES, type StatsRange } from "./stats-query.js";
import { migrateRollups, type RollupSample, TIERS, writeRollups } from "./stats-rollups.js";
import { DATABASE_URL, dropIsolation, newIsolation } from "./test-support/harness.js";

const isolation = newIsolation("statsq");
let pool: pg.Pool;
const NOW = Date.now();
const RECENT = NOW - 120_000;

const http = (tenant: string, agent: string, code: string, latencyMs: number, at = RECENT): RollupSample => ({
  at,
  tenant,
  service: "ingress",
  kind: "http",
  name: "POST /v1/chat/completions",
  agent,
  code,
  latencyMs,
  error: Number(code) >= 400,
});
const model = (tenant: string, name: string, costUsd: number, at = RECENT, code = "ok"): RollupSample => ({
  at,
  tenant,
  service: "model-proxy",
  kind: "model-chat",
  name,
  agent: tenant === "acme" ? "assistant" : "coder",
  code,
  latencyMs: 300,
  error: code !== "ok",
  promptTokens: 100,
  completionTokens: 20,
  costUsd,
});
const repeat = <T>(count: number, make: () => T): T[] => Array.from({ length: count }, make);

beforeAll(async () => {
  pool = await createPool({ url: DATABASE_URL, schema: isolation.schema, max: 4 });
  await migrateRollups(pool);
  await writeRollups(pool, [
    ...repeat(4, () => http("acme", "slowpoke", "200", 2500)),
    ...repeat(10, () => http("acme", "assistant", "200", 30)),
    ...repeat(2, () => http("acme", "assistant", "429", 1)),
    ...repeat(5, () => http("globex", "coder", "200", 100)),
    ...repeat(10, () => model("acme", "gpt-small", 0.01)),
    model("acme", "gpt-small", 0, RECENT, "rate_limited"),
    ...repeat(5, () => model("globex", "gpt-large", 0.1)),
    ...[false, false, true].map(
      (cacheHit): RollupSample => ({
        at: RECENT,
        tenant: "acme",
        service: "tool-executor",
        kind: "tool",
        name: "calculator",
        agent: "assistant",
        code: "ok",
        latencyMs: 5,
        error: false,
        costUsd: cacheHit ? 0 : 0.002,
        cacheHit,
      }),
    ),
    { ...model("acme", "gpt-small", 0.01), service: "users", kind: "user", name: "ada" },
    model("acme", "gpt-small", 0.01, NOW - 3 * 3600_000), // in 6 hours, not in 1
    model("globex", "gpt-large", 0.1, NOW - 10 * 86_400_000), // in 30 days, not in 7
  ]);
});

afterAll(async () => {
  await pool?.end();
  await dropIsolation(isolation);
});

type Answer = Awaited<ReturnType<typeof dashboardStats>>;
const valueAt = (answer: Answer, series: { values: Array<number | null> }, at: number) =>
  series.values[answer.times.indexOf(Math.floor(at / 1000 / answer.stepSeconds) * answer.stepSeconds)];

describe("dashboardStats", () => {
  it("draws all tenants: percentiles, spend, error rate with refusals, shed, hotspots, totals and cache savings", async () => {
    const answer = await dashboardStats(pool, undefined, "15m");
    expect(answer).toMatchObject({ tenant: "*", range: "15m", tier: "minute", stepSeconds: 60 });
    expect(answer.times.length).toBeGreaterThanOrEqual(15);

    const ingressP95 = answer.latency.byService.find((series) => series.label === "ingress p95")!;
    expect(valueAt(answer, ingressP95, RECENT)).toBeGreaterThan(2000);
    const slowP50 = answer.latency.byAgent.find((series) => series.label === "slowpoke p50")!;
    expect(valueAt(answer, slowP50, RECENT)).toBeGreaterThan(2000);
    const fastP50 = answer.latency.byAgent.find((series) => series.label === "assistant p50")!;
    expect(valueAt(answer, fastP50, RECENT)).toBeLessThanOrEqual(50);

    // 2 refusals of 21 requests, 1 failed model call of 16
    const refused = answer.errorRate.find((series) => series.label === "ingress 429")!;
    expect(valueAt(answer, refused, RECENT)).toBeCloseTo((100 * 2) / 21, 1);
    const limited = answer.errorRate.find((series) => series.label === "model-proxy rate_limited")!;
    expect(valueAt(answer, limited, RECENT)).toBeCloseTo(100 / 16, 1);
    expect(answer.shed.map((series) => series.label).sort()).toEqual(["ingress", "model-proxy"]);
    const throughput = answer.throughput.find((series) => series.label === "ingress")!;
    expect(valueAt(answer, throughput, RECENT)).toBe(21);

    const tenantCost = Object.fromEntries(
      answer.costUsd.tenant.map((series) => [series.label, valueAt(answer, series, RECENT)]),
    );
    expect(tenantCost.acme).toBeCloseTo(0.104, 6);
    expect(tenantCost.globex).toBeCloseTo(0.5, 6);
    expect(answer.costUsd.tenant[0]!.label).toBe("globex");
    const modelTokens = Object.fromEntries(
      answer.tokens.model.map((series) => [series.label, valueAt(answer, series, RECENT)]),
    );
    expect(modelTokens).toMatchObject({ "gpt-small": 1320, "gpt-large": 600 });

    const hotspot = (kind: string, name: string) =>
      answer.hotspots.find((entry) => entry.kind === kind && entry.name === name);
    expect(hotspot("agent", "slowpoke")?.p95Ms).toBeGreaterThan(2000);
    expect(hotspot("agent", "assistant")?.costUsd).toBeCloseTo(0.104, 6);
    expect(hotspot("tenant", "acme")).toMatchObject({ calls: 16, errorRate: 12.5 });
    expect(hotspot("tenant", "globex")?.costUsd).toBeCloseTo(0.5, 6);
    expect(hotspot("model", "gpt-large")?.costUsd).toBeCloseTo(0.5, 6);
    expect(hotspot("tool", "calculator")).toMatchObject({ calls: 3 });
    expect(hotspot("route", "POST /v1/chat/completions")).toMatchObject({ calls: 21 });
    expect(hotspot("user", "acme/ada")).toMatchObject({ calls: 1 });

    expect(answer.totals).toMatchObject({ calls: 19, errors: 1, requests: 21, refused: 2, tokens: 1920 });
    expect(answer.totals.costUsd).toBeCloseTo(0.604, 6);
    const toolCache = answer.cacheSavings.find((entry) => entry.cache === "tool")!;
    expect(toolCache).toMatchObject({ hits: 1, calls: 3 });
    expect(toolCache.savedUsd).toBeCloseTo(0.002, 6);
  });

  it("shows a tenant only its own", async () => {
    const answer = await dashboardStats(pool, "acme", "15m");
    expect(answer.tenant).toBe("acme");
    expect(answer.tokens.tenant.map((series) => series.label)).toEqual(["acme"]);
    expect(answer.costUsd.model.map((series) => series.label).sort()).toEqual([
      "gpt-small",
      "tool calculator",
    ]);
    expect(answer.latency.byAgent.map((series) => series.label)).not.toContain("coder p50");
    expect(answer.hotspots.filter((entry) => entry.kind === "tenant").map((entry) => entry.name)).toEqual([
      "acme",
    ]);
    expect(answer.hotspots.some((entry) => entry.name.includes("globex") || entry.name === "gpt-large")).toBe(
      false,
    );
    // 2 refusals of acme's 16 requests
    const refused = answer.errorRate.find((series) => series.label === "ingress 429")!;
    expect(valueAt(answer, refused, RECENT)).toBe(12.5);
    expect(answer.totals).toMatchObject({ calls: 14, requests: 16, refused: 2 });
    expect(answer.totals.costUsd).toBeCloseTo(0.104, 6);
  });

  it("reads each range from a tier of at most 168 buckets in it, and sees as far back as the range", async () => {
    const calls: Record<string, number> = {};
    for (const range of Object.keys(RANGES) as StatsRange[]) {
      const answer = await dashboardStats(pool, undefined, range);
      const { tier, step, seconds } = RANGES[range];
      expect(answer.tier).toBe(tier);
      expect(step % TIERS[tier].seconds).toBe(0);
      expect(seconds / TIERS[tier].seconds).toBeLessThanOrEqual(168);
      expect(answer.times.length).toBe(Math.floor(seconds / step));
      calls[range] = answer.totals.calls;
    }
    expect(calls).toEqual({ "15m": 19, "1h": 19, "6h": 20, "24h": 20, "7d": 20, "30d": 21 });
  });
});
