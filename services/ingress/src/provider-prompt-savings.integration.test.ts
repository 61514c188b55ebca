/**
 * The dashboard's "provider prompt" cache saving: the model proxy prices a call's cached prompt
 * tokens (`prompt_tokens_details.cached_tokens`) at the model's cached-input price, its usage
 * record carries what that saved, and ingress folds it into the rollups the dashboard reads.
 */
import { randomUUID } from "node:crypto";
import { Endpoints } from "@agent-runtime/contracts";
import * as modelProxy from "@agent-runtime/model-proxy";
import { createLogger } from "@agent-runtime/telemetry";
import { type FakeOpenAI, startFakeOpenAI, textStep } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StatsSeriesBody } from "./api-schemas.js";
import { BOOTSTRAP_KEY, type Harness, startHarness, until } from "./test-support/harness.js";

/** USD per 1M tokens of the one model, as configured. */
const PRICE = { input: 3, cachedInput: 0.3, output: 15 };
const MODEL = "cache-priced-model";

let harness: Harness;
let provider: FakeOpenAI;
let proxy: { stop(): Promise<void> };
let keys: { cached: string; other: string; responses: string };

beforeAll(async () => {
  harness = await startHarness({ prices: { [MODEL]: PRICE } }, {}, { driver: false });
  provider = await startFakeOpenAI();
  proxy = await modelProxy.startModelProxy(
    modelProxy.loadConfig({
      ...harness.env,
      OPENAI_BASE_URL: provider.url,
      OPENAI_API_KEY: "sk-fake",
      MODEL_FAST: MODEL,
      MODEL_STRONG: MODEL,
    }),
    { logger: createLogger({ service: "model-proxy", level: "error" }) },
  );
  keys = {
    cached: await harness.key("prompt-cache"),
    other: await harness.key("no-cache"),
    responses: await harness.key("response-cache"),
  };
}, 60_000);

afterAll(async () => {
  await proxy?.stop().catch(() => undefined);
  await provider?.close();
  await harness?.stop();
});

const chat = (tenant: string, text: string, cache = false) =>
  harness.bus.request(Endpoints.modelChat, {
    meta: { v: 1, tenant, requestId: randomUUID(), deadline: Date.now() + 10_000 },
    messages: [{ role: "user", content: text }],
    model: MODEL,
    cache,
    ...(cache ? { temperature: 0 } : {}),
  });

async function series(key: string, query = ""): Promise<StatsSeriesBody> {
  const response = await fetch(`${harness.url}/v1/stats/series?range=15m${query}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  expect(response.status).toBe(200);
  return StatsSeriesBody.parse(await response.json());
}

const providerPrompt = (body: StatsSeriesBody) =>
  body.cache_savings.find((entry) => entry.cache === "provider prompt")!;

describe("provider prompt cache savings", () => {
  it("shows the cached tokens and the USD they saved at the configured prices, for the tenant's view", async () => {
    // as a provider answers a prompt whose first 1,024 and then 1,536 tokens it had seen
    const calls = [
      { tenant: "prompt-cache", prompt: 1100, cached: 0 },
      { tenant: "prompt-cache", prompt: 1100, cached: 1024 },
      { tenant: "prompt-cache", prompt: 1700, cached: 1536 },
      { tenant: "no-cache", prompt: 1700, cached: 0 },
    ];
    provider.enqueue(
      ...calls.map(({ prompt, cached }) =>
        textStep("answer", {
          usage: { prompt_tokens: prompt, completion_tokens: 10, cached_tokens: cached },
        }),
      ),
    );
    for (const call of calls) {
      const reply = await chat(call.tenant, "a long shared prefix, then a question");
      expect(reply.usage).toMatchObject({ promptTokens: call.prompt, cachedTokens: call.cached });
      // the call itself is billed at the cached price for its cached tokens
      const billed =
        ((call.prompt - call.cached) * PRICE.input + call.cached * PRICE.cachedInput + 10 * PRICE.output) /
        1e6;
      expect(reply.costUsd).toBeCloseTo(billed, 10);
    }
    const cachedTokens = 1024 + 1536;
    const savedUsd = (cachedTokens * (PRICE.input - PRICE.cachedInput)) / 1e6;

    let tenantView = await series(keys.cached);
    await until(async () => {
      tenantView = await series(keys.cached);
      return providerPrompt(tenantView).tokens >= cachedTokens;
    }, 15_000);
    // two of the tenant's three provider calls had cached prompt tokens: hits, the first one not
    expect(providerPrompt(tenantView)).toMatchObject({ hits: 2, calls: 3, tokens: cachedTokens });
    expect(providerPrompt(tenantView).saved_usd).toBeCloseTo(savedUsd, 6);

    // another tenant's view has none of it; all tenants' view has its calls too
    await until(async () => (await series(keys.other)).totals.calls === 1, 15_000);
    const otherView = providerPrompt(await series(keys.other));
    expect(otherView).toMatchObject({ hits: 0, calls: 1, tokens: 0, saved_usd: 0 });
    const allView = providerPrompt(await series(BOOTSTRAP_KEY, "&tenant=*"));
    expect(allView).toMatchObject({ hits: 2, calls: 4, tokens: cachedTokens });
    expect(allView.saved_usd).toBeCloseTo(savedUsd, 6);
  });

  it("does not count a reply from the response cache as a provider call nor a prompt cache hit", async () => {
    provider.enqueue(
      textStep("answer", { usage: { prompt_tokens: 1100, completion_tokens: 10, cached_tokens: 1024 } }),
    );
    const first = await chat("response-cache", "the same deterministic question", true);
    const again = await chat("response-cache", "the same deterministic question", true);
    expect(first).toMatchObject({ cached: false, usage: { cachedTokens: 1024 } });
    // the stored reply keeps its usage, cached tokens included: still no provider call
    expect(again.cached).toBe(true);

    let view = await series(keys.responses);
    await until(async () => {
      view = await series(keys.responses);
      return view.totals.calls === 2;
    }, 15_000);
    expect(view.cache_savings.find((entry) => entry.cache === "response")).toMatchObject({
      hits: 1,
      calls: 2,
    });
    expect(providerPrompt(view)).toMatchObject({ hits: 1, calls: 1, tokens: 1024 });
  });
});
