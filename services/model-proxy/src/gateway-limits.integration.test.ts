import { type ModelChatReply, ModelStreamChunk, RuntimeError } from "@agent-runtime/contracts";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ProxyHarness, startProxyHarness, writeConfigFile } from "./test-support.js";

let primary: FakeOpenAI;
let backup: FakeOpenAI;
let replicaA: ProxyHarness;
let replicaB: ProxyHarness;
let active = 0;
let peak = 0;

const user = (content: string) => [{ role: "user" as const, content }];

beforeAll(async () => {
  primary = await startFakeOpenAI();
  backup = await startFakeOpenAI();
  primary.setHandler(async () => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((resolve) => setTimeout(resolve, 120));
    active--;
    return { content: "from primary" };
  });
  backup.setHandler(() => ({ content: "from backup" }));
  const config = writeConfigFile({
    providers: {
      // an rpm far above what the test sends, so the shared limit path (and its 429 cooldown) is on
      primary: { baseUrl: primary.url, apiKey: "k", maxConcurrency: 2, rpm: 100_000 },
      backup: { baseUrl: backup.url, apiKey: "k" },
    },
    models: { a: { provider: "primary" }, b: { provider: "backup" } },
    tiers: { fast: ["a", "b"], strong: ["a", "b"] },
  });
  replicaA = await startProxyHarness({ AGENT_CONFIG: config, LIMIT_MAX_WAIT_MS: "2000" });
  // a second replica on its own NATS namespace sharing the first one's Redis namespace
  replicaB = await startProxyHarness({
    AGENT_CONFIG: config,
    LIMIT_MAX_WAIT_MS: "200",
    REDIS_PREFIX: replicaA.env.REDIS_PREFIX,
  });
});

afterEach(() => {
  primary.setFault(null);
});

afterAll(async () => {
  await replicaA?.stop();
  await replicaB?.stop();
  await primary?.close();
  await backup?.close();
});

describe("per-provider concurrency bound", () => {
  it("queues calls beyond maxConcurrency briefly instead of overrunning the provider", async () => {
    peak = 0;
    const replies = (await Promise.all(
      Array.from({ length: 6 }, (_, index) => replicaA.chat({ messages: user(`c${index}`), tier: "fast" })),
    )) as ModelChatReply[];
    expect(replies.every((reply) => reply.provider === "primary")).toBe(true);
    expect(peak).toBe(2);
  });

  it("fails over when the wait for a slot would be too long", async () => {
    peak = 0;
    // replica B waits at most 200 ms for a slot; 120 ms calls two at a time leave some to fail over
    const replies = (await Promise.all(
      Array.from({ length: 8 }, (_, index) => replicaB.chat({ messages: user(`d${index}`), tier: "fast" })),
    )) as ModelChatReply[];
    const providers = replies.map((reply) => reply.provider);
    expect(peak).toBeLessThanOrEqual(2);
    expect(providers).toContain("primary");
    expect(providers).toContain("backup");
    const failedOver = replies.find((reply) => reply.provider === "backup");
    expect(failedOver?.fallbacks).toBe(1);
  });
});

describe("a provider's own 429", () => {
  it("holds every replica off that provider for its Retry-After", async () => {
    primary.enqueue({ fault: { kind: "status", status: 429, retryAfter: 3 } });
    const hitAt = Date.now();
    const first = (await replicaB.chat({ messages: user("hot"), tier: "fast" })) as ModelChatReply;
    // the Retry-After (3 s) is longer than replica B waits, so it failed over at once
    expect(first.provider).toBe("backup");
    const before = primary.chatRequests().length;
    const started = Date.now();
    const other = (await replicaA.chat({
      messages: user("elsewhere"),
      tier: "strong",
      meta: { deadline: Date.now() + 1500 },
    })) as ModelChatReply;
    // replica A never asked the cooling provider: it waited for a while, then failed over
    expect(other.provider).toBe("backup");
    expect(primary.chatRequests().length).toBe(before);
    expect(Date.now() - started).toBeLessThan(2500);
    // let the cooldown run out so later tests reach the provider
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, hitAt + 3100 - Date.now())));
  });
});

describe("response cache and streaming", () => {
  it("replays a cached reply with tool calls to a streaming caller as deltas", async () => {
    backup.enqueue({ toolCalls: [{ id: "call_1", name: "lookup", arguments: { q: "x" } }] });
    const request = {
      messages: user("use a tool"),
      model: "b",
      temperature: 0,
      tools: [{ type: "function" as const, function: { name: "lookup", parameters: { type: "object" } } }],
      toolsHaveSideEffects: false,
    };
    const first = (await replicaA.chat(request)) as ModelChatReply;
    expect(first.message.tool_calls?.[0]?.function.name).toBe("lookup");
    const subject = `test.cached.${Date.now()}`;
    const chunks: ModelStreamChunk[] = [];
    const subscription = replicaA.client.subscribe(subject, ModelStreamChunk, (chunk) => {
      chunks.push(chunk);
    });
    await replicaA.client.nc.flush();
    const second = (await replicaA.chat({ ...request, streamSubject: subject })) as ModelChatReply;
    await replicaA.client.nc.flush();
    subscription.unsubscribe();
    expect(second.cached).toBe(true);
    expect(chunks).toEqual([
      expect.objectContaining({
        index: 0,
        toolCalls: [{ index: 0, id: "call_1", name: "lookup", arguments: JSON.stringify({ q: "x" }) }],
      }),
    ]);
  });
});

describe("streaming failover", () => {
  it("fails over to the next model while no delta has been sent yet", async () => {
    primary.setFault({ kind: "status", status: 503 });
    const before = primary.chatRequests().length;
    const subject = `test.failover.${Date.now()}`;
    const chunks: ModelStreamChunk[] = [];
    const subscription = replicaA.client.subscribe(subject, ModelStreamChunk, (chunk) => {
      chunks.push(chunk);
    });
    await replicaA.client.nc.flush();
    const reply = await replicaA.chat({ messages: user("stream me"), tier: "fast", streamSubject: subject });
    await replicaA.client.nc.flush();
    subscription.unsubscribe();
    expect(reply.provider).toBe("backup");
    expect(reply.fallbacks).toBe(1);
    expect(primary.chatRequests().length - before).toBeGreaterThan(1); // tried and retried first
    expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, index) => index));
    expect(chunks.map((chunk) => chunk.content ?? "").join("")).toBe("from backup");
  });
});

describe("the proxy itself at capacity", () => {
  it("answers overloaded at once past MAX_IN_FLIGHT", async () => {
    const config = writeConfigFile({
      providers: { slow: { baseUrl: backup.url, apiKey: "k" } },
      models: { s: { provider: "slow" } },
      tiers: { fast: ["s"] },
    });
    const small = await startProxyHarness({ AGENT_CONFIG: config, MAX_IN_FLIGHT: "2" });
    try {
      backup.setHandler(() => ({ content: "slow", latencyMs: 400 }));
      const started = Date.now();
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, index) => small.chat({ messages: user(`o${index}`), tier: "fast" })),
      );
      const rejected = results.flatMap((result) => (result.status === "rejected" ? [result.reason] : []));
      expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(2);
      expect(rejected).toHaveLength(4);
      for (const error of rejected) {
        expect(error).toBeInstanceOf(RuntimeError);
        expect((error as RuntimeError).code).toBe("overloaded");
        expect((error as RuntimeError).retryable).toBe(true);
      }
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      backup.setHandler(() => ({ content: "from backup" }));
      await small.stop();
    }
  });
});
