import { createPool } from "@agent-runtime/stores";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ALL_TENANTS,
  BUCKET_COUNT,
  bucketOf,
  migrateRollups,
  pruneRollups,
  quantileOf,
  RollupBuffer,
  type RollupSample,
  SLICE,
  TIERS,
  USER_TIERS,
  writeQueueDepth,
  writeRollups,
} from "./stats-rollups.js";
import { DATABASE_URL, dropIsolation, newIsolation } from "./test-support/harness.js";

const isolation = newIsolation("rollups");
let pool: pg.Pool;

beforeAll(async () => {
  pool = await createPool({ url: DATABASE_URL, schema: isolation.schema, max: 2 });
  await migrateRollups(pool);
  await migrateRollups(pool); // again, as a second replica starting does
});

afterAll(async () => {
  await pool?.end();
  await dropIsolation(isolation);
});

// 7.5 minutes into an hour two days ago
const AT = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 86_400_000 + 450_000;

function sample(overrides: Partial<RollupSample>): RollupSample {
  return {
    at: AT,
    tenant: "acme",
    service: "model-proxy",
    kind: "model-chat",
    name: "gpt-small",
    agent: "assistant",
    code: "ok",
    latencyMs: 40,
    error: false,
    promptTokens: 100,
    completionTokens: 20,
    costUsd: 0.01,
    ...overrides,
  };
}

describe("RollupBuffer", () => {
  it("sums samples into the slices of their tenant and of all tenants, in every tier, in key order", () => {
    const buffer = new RollupBuffer();
    buffer.add(sample({}));
    buffer.add(sample({ latencyMs: 900, code: "rate_limited", error: true }));
    buffer.add(sample({ tenant: "globex", agent: "coder" }));
    buffer.add(sample({ at: AT + 60_000 })); // the next minute, same hour and day
    expect(buffer.size).toBe(4);
    const rows = buffer.take();
    expect(buffer.size).toBe(0);

    const ids = rows.map((row) =>
      [
        row.tier,
        row.tenant,
        row.slice,
        row.bucket,
        row.service,
        row.kind,
        row.name,
        row.agent,
        row.code,
      ].join("\u0000"),
    );
    expect(ids).toEqual([...ids].sort());
    expect(new Set(ids).size).toBe(ids.length);

    const hour = Math.floor(AT / 3_600_000) * 3600;
    const find = (tier: string, tenant: string, slice: number, match: Record<string, string> = {}) =>
      rows.filter(
        (row) =>
          row.tier === tier &&
          row.tenant === tenant &&
          row.slice === slice &&
          Object.entries(match).every(([key, value]) => row[key as "name"] === value),
      );
    // per service: acme's three samples of this hour, all four for all tenants
    expect(find("hour", "acme", SLICE.service).map((row) => [row.bucket, row.sums.calls])).toEqual([
      [hour, 3],
    ]);
    expect(find("hour", ALL_TENANTS, SLICE.service)[0]!.sums).toMatchObject({
      calls: 4,
      errors: 1,
      promptTokens: 400,
      completionTokens: 80,
      latencyMsMax: 900,
    });
    // minute rows are apart
    expect(find("minute", "acme", SLICE.service).map((row) => row.sums.calls)).toEqual([2, 1]);
    // per code, agent and name, and (for all tenants) per tenant
    expect(find("hour", "acme", SLICE.code).map((row) => [row.code, row.sums.calls])).toEqual([
      ["ok", 2],
      ["rate_limited", 1],
    ]);
    expect(find("day", ALL_TENANTS, SLICE.agent).map((row) => [row.agent, row.sums.calls])).toEqual([
      ["assistant", 3],
      ["coder", 1],
    ]);
    expect(find("hour", ALL_TENANTS, SLICE.name)[0]).toMatchObject({ kind: "model-chat", name: "gpt-small" });
    expect(find("hour", ALL_TENANTS, SLICE.tenant).map((row) => [row.name, row.sums.calls])).toEqual([
      ["acme", 3],
      ["globex", 1],
    ]);
    expect(find("hour", "acme", SLICE.tenant)).toEqual([]);
    // the histogram holds each latency in its bucket
    const histogram = find("hour", "acme", SLICE.service)[0]!.sums.histogram;
    expect(histogram).toHaveLength(BUCKET_COUNT);
    expect(histogram[bucketOf(40)]).toBe(2);
    expect(histogram[bucketOf(900)]).toBe(1);
    // every tier has the same slices
    const count = (tier: string) => rows.filter((row) => row.tier === tier && row.bucket >= 0).length;
    expect(count("day")).toBe(count("hour"));
    expect(count("fiveMinutes")).toBe(count("hour"));
    expect(count("minute")).toBeGreaterThan(count("hour"));
  });

  it("keeps a user once, under its tenant, in the tiers the hotspots read", () => {
    const buffer = new RollupBuffer();
    buffer.add(sample({ service: "users", kind: "user", name: "ada", agent: "assistant" }));
    const rows = buffer.take();
    expect(rows.map((row) => [row.tier, row.tenant, row.slice, row.name, row.agent])).toEqual([
      ["day", "acme", SLICE.user, "acme/ada", ""],
      ["hour", "acme", SLICE.user, "acme/ada", ""],
      ["minute", "acme", SLICE.user, "acme/ada", ""],
    ]);
    expect([...USER_TIERS].sort()).toEqual(["day", "hour", "minute"]);
  });
});

describe("writeRollups", () => {
  it("adds into every tier in one statement, again on each write", async () => {
    const samples = [sample({}), sample({ latencyMs: 2500 }), sample({ tenant: "globex" })];
    await writeRollups(pool, samples);
    await writeRollups(pool, samples);
    for (const [tier, { table, seconds }] of Object.entries(TIERS)) {
      const { rows } = await pool.query(
        `SELECT extract(epoch FROM bucket)::bigint AS bucket, calls::int, prompt_tokens::int, cost_usd, latency_ms_max,
           ${Array.from({ length: BUCKET_COUNT }, (_, index) => `h${index}::int`).join(", ")}
         FROM ${table} WHERE tenant = $1 AND slice = $2`,
        [ALL_TENANTS, SLICE.service],
      );
      expect(rows, tier).toHaveLength(1);
      const row = rows[0]!;
      expect(Number(row.bucket)).toBe(Math.floor(AT / 1000 / seconds) * seconds);
      expect(row).toMatchObject({ calls: 6, prompt_tokens: 600, latency_ms_max: 2500 });
      expect(row.cost_usd).toBeCloseTo(0.06, 10);
      const histogram = Array.from({ length: BUCKET_COUNT }, (_, index) => row[`h${index}`]);
      expect(quantileOf(histogram, 0.5, row.latency_ms_max)).toBeLessThanOrEqual(50);
      expect(quantileOf(histogram, 0.95, row.latency_ms_max)).toBeGreaterThan(2000);
    }
  });

  it("adds the prompt cache saving and hits to tables made before them, and sums them in every tier", async () => {
    // tables of an earlier release: no prompt_cache_saved_usd nor prompt_cache_hits column
    for (const { table } of Object.values(TIERS))
      await pool.query(
        `ALTER TABLE ${table} DROP COLUMN prompt_cache_saved_usd, DROP COLUMN prompt_cache_hits`,
      );
    await migrateRollups(pool);
    const cached = (promptCacheSavedUsd: number) =>
      sample({
        tenant: "cached",
        promptTokens: 2048,
        cachedTokens: 1024,
        promptCacheSavedUsd,
        promptCacheHit: true,
      });
    await writeRollups(pool, [cached(0.0027), cached(0.0054), sample({ tenant: "cached" })]);
    // a second write adds to the rows it finds
    await writeRollups(pool, [cached(0.0027)]);
    for (const [tier, { table }] of Object.entries(TIERS)) {
      const { rows } = await pool.query(
        `SELECT calls::int, cached_tokens::int, prompt_cache_saved_usd, prompt_cache_hits::int
         FROM ${table} WHERE tenant = 'cached' AND slice = $1`,
        [SLICE.service],
      );
      expect(rows, tier).toHaveLength(1);
      expect(rows[0], tier).toMatchObject({ calls: 4, cached_tokens: 3072, prompt_cache_hits: 3 });
      expect(rows[0].prompt_cache_saved_usd, tier).toBeCloseTo(0.0108, 10);
    }
  });

  it("writes nothing for no samples", async () => {
    await writeRollups(pool, []);
  });
});

describe("queue depth and pruning", () => {
  it("keeps the deepest queue per lane in every tier", async () => {
    await writeQueueDepth(pool, AT, [{ lane: "batch", pending: 5, ackPending: 2 }]);
    await writeQueueDepth(pool, AT + 1000, [{ lane: "batch", pending: 3, ackPending: 7 }]);
    for (const { queue } of Object.values(TIERS)) {
      const { rows } = await pool.query(`SELECT lane, pending::int, ack_pending::int FROM ${queue}`);
      expect(rows).toEqual([{ lane: "batch", pending: 5, ack_pending: 7 }]);
    }
  });

  it("drops rows older than each tier keeps", async () => {
    const now = Date.now();
    await writeRollups(pool, [
      sample({ at: now - 5 * 86_400_000, tenant: "old" }),
      sample({ at: now - 60_000, tenant: "recent" }),
    ]);
    await pruneRollups(pool);
    const tenants = async (table: string) =>
      (
        await pool.query<{ tenant: string }>(
          `SELECT DISTINCT tenant FROM ${table} WHERE tenant IN ('old', 'recent') ORDER BY tenant`,
        )
      ).rows.map((row) => row.tenant);
    expect(await tenants(TIERS.minute.table)).toEqual(["recent"]);
    expect(await tenants(TIERS.hour.table)).toEqual(["old", "recent"]);
    expect(await tenants(TIERS.day.table)).toEqual(["old", "recent"]);
  });
});
