/**
 * Usage records reach the dashboard's rollups once each: a record delivered again after the
 * write that held it committed is left out, and a record whose write failed (the store went
 * away mid-transaction) is written by its redelivery, neither lost nor counted twice.
 */
import { randomUUID } from "node:crypto";
import { ModelUsageRecord, Subjects } from "@agent-runtime/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness, until } from "./test-support/harness.js";

let harness: Harness;
let key: string;

beforeAll(async () => {
  harness = await startHarness({}, {}, { driver: false });
  key = await harness.key("tally", ["runs"]);
});

afterAll(async () => {
  await harness?.stop();
});

const record = (): ModelUsageRecord => ({
  v: 1,
  id: `u-${randomUUID()}`,
  ts: Date.now(),
  tenant: "tally",
  runId: `run_${randomUUID()}`,
  agent: "assistant",
  requestId: randomUUID(),
  kind: "chat",
  route: "default",
  routeReason: "test",
  tier: "fast",
  model: "fake-fast",
  provider: "fake",
  usage: { promptTokens: 10, completionTokens: 5, cachedTokens: 0, totalTokens: 15 },
  usageEstimated: false,
  costUsd: 0.001,
  latencyMs: 20,
  retries: 0,
  fallbacks: 0,
  cached: false,
  status: "ok",
});

const publish = (usage: ModelUsageRecord) =>
  harness.bus.publishDurable(Subjects.usageModel, ModelUsageRecord, usage);

/** Model calls of the tenant as the dashboard and `/v1/stats` count them. */
async function counted(): Promise<{ series: number; daily: number }> {
  const series = (await (
    await fetch(`${harness.url}/v1/stats/series?range=15m`, { headers: { authorization: `Bearer ${key}` } })
  ).json()) as { totals: { calls: number } };
  const daily = await harness.pool.query<{ calls: string }>(
    "SELECT coalesce(sum(calls), 0) AS calls FROM usage_daily WHERE tenant = 'tally'",
  );
  return { series: series.totals.calls, daily: Number(daily.rows[0]!.calls) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("usage rollups", () => {
  it("count a record delivered again after its write committed once", async () => {
    const first = record();
    await publish(first);
    await until(async () => (await counted()).series === 1);
    // as JetStream redelivers a record whose ack was lost: same id, a later write
    await publish(first);
    await publish(record());
    await until(async () => (await counted()).series === 2);
    await sleep(1500); // past the next write
    expect(await counted()).toEqual({ series: 2, daily: 2 });
  }, 20_000);

  it("write a record whose transaction failed when it is delivered again, once", async () => {
    const before = (await counted()).series;
    // the rollup upsert fails inside the transaction, after the record's id was remembered (a
    // constraint, not a rename: a renamed table would resolve to one of that name in `public`)
    await harness.pool.query("ALTER TABLE rollup_hour ADD CONSTRAINT refuse_all CHECK (false) NOT VALID");
    try {
      await publish(record());
      await sleep(2500); // at least one delivery failed and was rolled back
      const during = await harness.pool.query<{ calls: string }>(
        "SELECT coalesce(sum(calls), 0) AS calls FROM usage_daily WHERE tenant = 'tally'",
      );
      expect(Number(during.rows[0]!.calls)).toBe(before);
    } finally {
      await harness.pool.query("ALTER TABLE rollup_hour DROP CONSTRAINT refuse_all");
    }
    await until(async () => (await counted()).series === before + 1, 15_000);
    await sleep(1500);
    expect(await counted()).toEqual({ series: before + 1, daily: before + 1 });
  }, 30_000);
});
