import { Endpoints, type ModelChatReply } from "@agent-runtime/contracts";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxyHarness, startProxyHarness, writeConfigFile } from "./test-support.js";

let fake: FakeOpenAI;
let harness: ProxyHarness;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler(() => ({ content: "an answer" }));
  harness = await startProxyHarness({
    AGENT_CONFIG: writeConfigFile({
      providers: { main: { baseUrl: fake.url, apiKey: "k" } },
      models: { small: { provider: "main", pricing: { input: 1, output: 2 } } },
      tiers: { fast: ["small"], strong: ["small"] },
    }),
  });
  // until the proxy's Redis connection is up, answers are not cached: warm up until one is
  for (const until = Date.now() + 5000; Date.now() < until; ) {
    const warm = await harness.chat({
      messages: [{ role: "user", content: "warm up" }],
      tier: "fast",
      temperature: 0,
    });
    if (warm.cached) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

afterAll(async () => {
  await harness?.stop();
  await fake?.close();
});

describe("model-proxy caches are keyed by whose request it is", () => {
  it("never answers one tenant or user from another's cached answer", async () => {
    const prompt = [{ role: "user" as const, content: `the secret plan ${Date.now()}` }];
    const ask = (tenant: string, userId?: string) =>
      harness.chat({
        messages: prompt,
        tier: "fast",
        temperature: 0,
        meta: { tenant, ...(userId ? { userId } : {}) },
      }) as Promise<ModelChatReply>;
    const before = fake.chatRequests().length;
    expect((await ask("acme", "ann")).cached).toBe(false);
    // another tenant, another user of the same tenant, the tenant without a user: each a miss
    expect((await ask("globex", "ann")).cached).toBe(false);
    expect((await ask("acme", "bob")).cached).toBe(false);
    expect((await ask("acme")).cached).toBe(false);
    // the same tenant and user: a hit, at no cost
    const again = await ask("acme", "ann");
    expect(again.cached).toBe(true);
    expect(again.costUsd).toBe(0);
    expect(fake.chatRequests().length - before).toBe(4);
  });

  it("keeps embeddings per tenant", async () => {
    const text = `seen once ${Date.now()}`;
    const embed = (tenant: string) =>
      harness.client.request(Endpoints.modelEmbed, {
        meta: { v: 1, tenant, requestId: `emb-${tenant}-${Math.random()}`, deadline: Date.now() + 5000 },
        model: "small",
        input: [text],
      });
    expect((await embed("acme")).cachedCount).toBe(0);
    expect((await embed("globex")).cachedCount).toBe(0);
    expect((await embed("acme")).cachedCount).toBe(1);
  });
});
