import { decodeWith } from "@agent-runtime/bus";
import { Endpoints, type ModelChatReply, ModelUsageRecord, RuntimeError } from "@agent-runtime/contracts";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ProxyHarness, startProxyHarness, writeConfigFile } from "./test-support.js";

let primary: FakeOpenAI;
let backup: FakeOpenAI;
let harness: ProxyHarness;

const user = (content: string) => [{ role: "user" as const, content }];

beforeAll(async () => {
  primary = await startFakeOpenAI();
  backup = await startFakeOpenAI();
  primary.setHandler(() => ({
    content: "from primary",
    usage: { prompt_tokens: 1000, completion_tokens: 500, cached_tokens: 200 },
  }));
  backup.setHandler(() => ({ content: "from backup" }));
  const config = writeConfigFile({
    providers: {
      primary: { baseUrl: primary.url, apiKey: "k1", timeoutMs: 400 },
      backup: { baseUrl: backup.url, apiKey: "k2", timeoutMs: 2000 },
    },
    models: {
      "a-small": { provider: "primary", pricing: { input: 1.0, output: 2.0, cachedInput: 0.5 } },
      "b-small": { provider: "backup", pricing: { input: 0.1, output: 0.2 } },
      "a-large": { provider: "primary", pricing: { input: 10, output: 20 } },
    },
    tiers: { fast: ["a-small", "b-small"], strong: ["a-large"] },
    routes: [
      {
        name: "experiment",
        when: { task: ["classify"] },
        variants: [
          { name: "control", tier: "fast", weight: 3 },
          { name: "treatment", tier: "strong", weight: 1 },
        ],
      },
    ],
  });
  harness = await startProxyHarness({
    AGENT_CONFIG: config,
    BREAKER_FAILURES: "3",
    BREAKER_COOLDOWN_MS: "500",
    MAX_RETRIES: "2",
  });
});
afterEach(() => {
  primary.setFault(null);
  backup.setFault(null);
});
afterAll(async () => {
  await harness?.stop();
  await primary?.close();
  await backup?.close();
});

describe("model-proxy resilience", () => {
  it("retries a 500 and then succeeds", async () => {
    primary.enqueue({ fault: { kind: "status", status: 500 } });
    const reply = (await harness.chat({ messages: user("hi"), tier: "fast" })) as ModelChatReply;
    expect(reply.message.content).toBe("from primary");
    expect(reply.retries).toBe(1);
    expect(reply.fallbacks).toBe(0);
  });

  it("honours Retry-After on 429", async () => {
    primary.enqueue({ fault: { kind: "status", status: 429, retryAfter: 1 } });
    const started = Date.now();
    const reply = (await harness.chat({ messages: user("hi"), tier: "fast" })) as ModelChatReply;
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(reply.retries).toBe(1);
    expect(reply.provider).toBe("primary");
  });

  it("does not retry a 400 that would fail again", async () => {
    primary.enqueue({ fault: { kind: "status", status: 400 } });
    const before = primary.chatRequests().length;
    const error = await harness.chat({ messages: user("hi"), tier: "fast" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).retryable).toBe(false);
    expect(primary.chatRequests().length - before).toBe(1);
  });

  it("labels a failed call with the model and provider it tried, never none", async () => {
    primary.enqueue({ fault: { kind: "status", status: 400 } });
    await harness.chat({ messages: user("fails"), tier: "fast" }).catch(() => undefined);
    const metrics = await (await fetch(`http://127.0.0.1:${harness.proxy.opsPort}/metrics`)).text();
    const line = (name: string, ...labels: string[]) =>
      metrics
        .split("\n")
        .find((entry) => entry.startsWith(`${name}{`) && labels.every((label) => entry.includes(label)));
    const failed = line("model_failures_total", 'model="a-small"', 'provider="primary"');
    expect(failed).toBeDefined();
    expect(Number(failed!.split(" ").at(-1))).toBeGreaterThanOrEqual(1);
    expect(
      line("model_requests_total", 'status="error"', 'model="a-small"', 'provider="primary"'),
    ).toBeDefined();
    expect(metrics).not.toMatch(/model_(requests|failures)_total\{[^}]*(model|provider)="none"/);
  });

  it("falls back to the second provider when the first keeps failing or hangs", async () => {
    primary.setFault({ kind: "status", status: 503 });
    const reply = (await harness.chat({ messages: user("x"), tier: "fast" })) as ModelChatReply;
    expect(reply.message.content).toBe("from backup");
    expect(reply.provider).toBe("backup");
    expect(reply.fallbacks).toBe(1);

    primary.setFault({ kind: "hang" });
    const hung = (await harness.chat({
      messages: user("y"),
      tier: "fast",
      meta: { deadline: Date.now() + 8000 },
    })) as ModelChatReply;
    expect(hung.provider).toBe("backup");
  });

  it("opens the breaker on a dead provider, skips it at once, and closes after a good probe", async () => {
    primary.setFault({ kind: "status", status: 500 });
    // enough failures to open the breaker
    await harness.chat({ messages: user("a"), tier: "fast" });
    expect(harness.proxy.gateway.breakerState("primary")).toBe("open");
    const before = primary.chatRequests().length;
    const skipped = (await harness.chat({ messages: user("b"), tier: "fast" })) as ModelChatReply;
    expect(skipped.provider).toBe("backup");
    expect(primary.chatRequests().length).toBe(before); // not even tried
    primary.setFault(null);
    await new Promise((resolve) => setTimeout(resolve, 550));
    expect(harness.proxy.gateway.breakerState("primary")).toBe("half-open");
    const probe = (await harness.chat({ messages: user("c"), tier: "fast" })) as ModelChatReply;
    expect(probe.provider).toBe("primary");
    expect(harness.proxy.gateway.breakerState("primary")).toBe("closed");
  });

  it("fails with a typed error within the caller's deadline when every model fails", async () => {
    primary.setFault({ kind: "status", status: 500 });
    backup.setFault({ kind: "status", status: 500 });
    const started = Date.now();
    const error = (await harness
      .chat({ messages: user("z"), tier: "fast", meta: { deadline: Date.now() + 1500 } })
      .catch((e: unknown) => e)) as RuntimeError;
    expect(error.code).toBe("upstream");
    expect(Date.now() - started).toBeLessThan(2500);
    // let both breakers cool down so the next tests start with healthy providers
    primary.setFault(null);
    backup.setFault(null);
    await new Promise((resolve) => setTimeout(resolve, 600));
  });
});

describe("model-proxy accounting, caching and idempotency", () => {
  it("computes cost from the price table, cached tokens at the cached price", async () => {
    const reply = (await harness.chat({ messages: user("price"), tier: "fast" })) as ModelChatReply;
    // 800 uncached * $1/M + 200 cached * $0.5/M + 500 * $2/M
    expect(reply.usage).toMatchObject({ promptTokens: 1000, completionTokens: 500, cachedTokens: 200 });
    expect(reply.costUsd).toBeCloseTo((800 * 1 + 200 * 0.5 + 500 * 2) / 1e6, 12);
  });

  it("answers a deterministic request from the cache without a provider call, at no cost", async () => {
    const before = primary.chatRequests().length;
    const first = (await harness.chat({
      messages: user("cache me"),
      tier: "fast",
      temperature: 0,
    })) as ModelChatReply;
    const second = (await harness.chat({
      messages: user("cache me"),
      tier: "fast",
      temperature: 0,
    })) as ModelChatReply;
    expect(first.cached).toBe(false);
    expect(second.cached).toBe(true);
    expect(second.costUsd).toBe(0);
    expect(second.message).toEqual(first.message);
    expect(primary.chatRequests().length - before).toBe(1);
    const optOut = (await harness.chat({
      messages: user("cache me"),
      tier: "fast",
      temperature: 0,
      cache: false,
    })) as ModelChatReply;
    expect(optOut.cached).toBe(false);
  });

  it("estimates usage with the tokenizer when the provider reports none", async () => {
    primary.enqueue({ content: "a reply without usage numbers", usage: false });
    const reply = (await harness.chat({
      messages: user("count my tokens please"),
      tier: "fast",
    })) as ModelChatReply;
    expect(reply.usage.promptTokens).toBeGreaterThan(5);
    expect(reply.usage.completionTokens).toBe(5); // "a reply without usage numbers" in o200k_base
    expect(reply.costUsd).toBeGreaterThan(0);
  });

  it("returns the first result for a repeated (or resumed) request id", async () => {
    const before = primary.chatRequests().length;
    const meta = { requestId: `idem-${Date.now()}` };
    const [a, b] = (await Promise.all([
      harness.chat({ messages: user("once"), tier: "fast", meta }),
      harness.chat({ messages: user("once"), tier: "fast", meta }),
    ])) as ModelChatReply[];
    // a call made again after its run was taken over is answered from the idempotency record
    const c = (await harness.chat({
      messages: user("once"),
      tier: "fast",
      meta,
      resumed: true,
    })) as ModelChatReply;
    expect(primary.chatRequests().length - before).toBe(1);
    expect(b).toEqual(a);
    expect(c.message).toEqual(a!.message);
  });

  it("publishes one usage record per call with tenant, route, variant, model and provider", async () => {
    const jsm = await harness.client.jsm();
    const stream = harness.client.streamName("USAGE");
    const before = (await jsm.streams.info(stream)).state.last_seq;
    await harness.chat({
      messages: user("classify this"),
      task: "classify",
      meta: { userId: "u-1", runId: "r-1", agent: "ag" },
    });
    let record: ModelUsageRecord | undefined;
    for (let i = 0; i < 50 && !record; i++) {
      const info = await jsm.streams.info(stream);
      if (info.state.last_seq > before) {
        const message = await jsm.streams.getMessage(stream, { seq: info.state.last_seq });
        record = decodeWith(ModelUsageRecord, message!.data);
      } else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(record).toMatchObject({
      tenant: "t1",
      userId: "u-1",
      runId: "r-1",
      agent: "ag",
      route: "classify",
      status: "ok",
    });
    expect(["control", "treatment"]).toContain(record?.variant);
    expect(record?.provider).toBe("primary");
    // the provider's 200 cached tokens, at a-small's input less cached-input price (a-large has no cached price)
    expect(record?.promptCacheSavedUsd).toBeCloseTo(
      record?.model === "a-small" ? (200 * (1 - 0.5)) / 1e6 : 0,
      12,
    );
  });
});

describe("routing", () => {
  it("sends a simple question to fast and a hard one to strong, recording why", async () => {
    const simple = (await harness.chat({ messages: user("What time is it in Paris?") })) as ModelChatReply;
    expect(simple.route.tier).toBe("fast");
    expect(simple.model).toBe("a-small");
    const hard = (await harness.chat({
      messages: user(
        "Analyze the trade-offs of this architecture step by step, compare event sourcing with CRUD, and design a migration strategy. Explain why each decision holds and evaluate the algorithm complexity.",
      ),
    })) as ModelChatReply;
    expect(hard.route.tier).toBe("strong");
    expect(hard.route.reason).toMatch(/complexity/);
    const deep = (await harness.chat({ messages: user("hi"), deepAnalysis: true })) as ModelChatReply;
    expect(deep.route.tier).toBe("strong");
  });

  it("splits an A/B route close to its weights, sticky per user", async () => {
    const counts = { control: 0, treatment: 0 };
    for (let i = 0; i < 400; i++) {
      const reply = (await harness.chat({
        messages: user("label"),
        task: "classify",
        meta: { userId: `user-${i}` },
      })) as ModelChatReply;
      counts[reply.route.variant as "control" | "treatment"]++;
    }
    expect(counts.control / 400).toBeGreaterThan(0.66);
    expect(counts.control / 400).toBeLessThan(0.84);
    const first = (await harness.chat({
      messages: user("a"),
      task: "classify",
      meta: { userId: "sticky" },
    })) as ModelChatReply;
    for (let i = 0; i < 5; i++) {
      const again = (await harness.chat({
        messages: user(`b${i}`),
        task: "classify",
        meta: { userId: "sticky" },
      })) as ModelChatReply;
      expect(again.route.variant).toBe(first.route.variant);
    }
  });

  it("streams deltas to the caller's subject with usage at the end", async () => {
    primary.enqueue({ content: "one two three four five" });
    const subject = `test.stream.${Date.now()}`;
    const chunks: string[] = [];
    const subscription = harness.client.subscribe(
      subject,
      (await import("@agent-runtime/contracts")).ModelStreamChunk,
      (chunk) => {
        if (chunk.content) chunks.push(chunk.content);
      },
    );
    await harness.client.nc.flush();
    const reply = (await harness.chat({
      messages: user("stream"),
      tier: "fast",
      streamSubject: subject,
    })) as ModelChatReply;
    await harness.client.nc.flush();
    subscription.unsubscribe();
    expect(chunks.join("")).toBe("one two three four five");
    expect(chunks.length).toBeGreaterThan(2);
    expect(reply.message.content).toBe("one two three four five");
    expect(reply.usage.totalTokens).toBeGreaterThan(0);
    expect(reply.ttftMs).toBeGreaterThanOrEqual(0);
  });

  it("reports a stream that breaks mid-way instead of truncating it", async () => {
    primary.enqueue({ content: "a b c d e f g h i j", fault: { kind: "stream-break", afterChunks: 3 } });
    const error = (await harness
      .chat({ messages: user("break"), tier: "fast", streamSubject: `test.broken.${Date.now()}` })
      .catch((e: unknown) => e)) as RuntimeError;
    expect(error).toBeInstanceOf(RuntimeError);
    expect(error.code).toBe("upstream");
    expect(error.message).toMatch(/broke after deltas/);
  });

  it("embeds in batches and serves repeated texts from the cache", async () => {
    const meta = { v: 1 as const, tenant: "t1", requestId: "emb-1", deadline: Date.now() + 5000 };
    const config = await harness.client.request(Endpoints.modelEmbed, {
      meta,
      model: "b-small",
      input: ["alpha beta", "gamma"],
    });
    expect(config.embeddings).toHaveLength(2);
    expect(config.cachedCount).toBe(0);
    const again = await harness.client.request(Endpoints.modelEmbed, {
      meta,
      model: "b-small",
      input: ["alpha beta", "delta"],
    });
    expect(again.cachedCount).toBe(1);
    expect(again.embeddings[0]).toEqual(config.embeddings[0]);
  });
});
