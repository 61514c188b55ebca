/** `/v1/stats` cost of unpriced models: the model proxy's usage records, folded by ingress, read over HTTP. */
import { randomUUID } from "node:crypto";
import { Endpoints } from "@agent-runtime/contracts";
import * as modelProxy from "@agent-runtime/model-proxy";
import { createLogger } from "@agent-runtime/telemetry";
import { type FakeOpenAI, startFakeOpenAI, textStep } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageStatsBody } from "./api-schemas.js";
import { type Harness, startHarness, until } from "./test-support/harness.js";

let harness: Harness;
let provider: FakeOpenAI;
let proxy: { stop(): Promise<void> };
let key: string;

beforeAll(async () => {
  harness = await startHarness({}, {}, { driver: false });
  provider = await startFakeOpenAI();
  proxy = await modelProxy.startModelProxy(
    modelProxy.loadConfig({
      ...harness.env,
      OPENAI_BASE_URL: provider.url,
      OPENAI_API_KEY: "sk-fake",
      // gpt-4o-mini has a built-in price; my-local-model has none
      MODEL_FAST: "gpt-4o-mini",
      MODEL_STRONG: "my-local-model",
    }),
    { logger: createLogger({ service: "model-proxy", level: "error" }) },
  );
  key = await harness.key("pricing");
}, 60_000);

afterAll(async () => {
  await proxy?.stop().catch(() => undefined);
  await provider?.close();
  await harness?.stop();
});

const chat = (model: string, text: string) =>
  harness.bus.request(Endpoints.modelChat, {
    meta: { v: 1, tenant: "pricing", requestId: randomUUID(), deadline: Date.now() + 10_000 },
    messages: [{ role: "user", content: text }],
    model,
    cache: false,
  });

describe("GET /v1/stats", () => {
  it("shows the cost of an unpriced model as unknown, never as $0, and counts its calls", async () => {
    provider.enqueue(textStep("priced answer"), textStep("unpriced answer"), textStep("again"));
    const priced = await chat("gpt-4o-mini", "one");
    expect(priced.costUsd).toBeGreaterThan(0);
    expect((await chat("my-local-model", "two")).costUsd).toBe(0);
    await chat("my-local-model", "three");

    let stats: UsageStatsBody | undefined;
    await until(async () => {
      const response = await fetch(`${harness.url}/v1/stats`, {
        headers: { authorization: `Bearer ${key}` },
      });
      stats = UsageStatsBody.parse(await response.json());
      return stats.totals.calls >= 3;
    }, 15_000);
    if (!stats) throw new Error("no stats");
    const items = stats.items;
    const item = (name: string) => items.find((entry) => entry.name === name);
    expect(item("my-local-model")).toMatchObject({ calls: 2, cost_usd: null, unpriced_calls: 2 });
    expect(item("gpt-4o-mini")).toMatchObject({ calls: 1, unpriced_calls: 0 });
    expect(item("gpt-4o-mini")?.cost_usd).toBeCloseTo(priced.costUsd, 10);
    // the total is the priced calls' cost, and says how many calls it leaves out
    expect(stats.totals.unpriced_calls).toBe(2);
    expect(stats.totals.cost_usd).toBeCloseTo(priced.costUsd, 10);
  });
});
