import { type ModelChatReply, RuntimeError } from "@agent-runtime/contracts";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxyHarness, startProxyHarness, writeConfigFile } from "./test-support.js";

const PROVIDER_LATENCY_MS = 150;

let fake: FakeOpenAI;
let reserved: ProxyHarness;
let unreserved: ProxyHarness;
let active = 0;
let peak = 0;

const user = (content: string) => [{ role: "user" as const, content }];
const batch = () => ({ priority: "batch" as const, deadline: Date.now() + 60_000 });

function lastUserText(body: { messages: { role: string; content?: unknown }[] }): string {
  return String(body.messages.findLast((message) => message.role === "user")?.content);
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const giveUpAt = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Waits out the end of a minute so a test's counts stay in one rate window. */
async function insideOneWindow(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 55_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 50));
}

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler(async (body) => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((resolve) => setTimeout(resolve, PROVIDER_LATENCY_MS));
    active--;
    return { content: `answer to ${lastUserText(body)}` };
  });
  const config = writeConfigFile({
    providers: {
      narrow: { baseUrl: fake.url, apiKey: "k", maxConcurrency: 4 },
      rated: { baseUrl: fake.url, apiKey: "k", rpm: 10 },
    },
    models: { n: { provider: "narrow" }, r: { provider: "rated" } },
    tiers: { fast: ["n"], rated: ["r"] },
  });
  // one of the 4 provider slots is kept for interactive calls; the other proxy keeps none
  reserved = await startProxyHarness({ AGENT_CONFIG: config, LIMIT_MAX_WAIT_MS: "100" });
  unreserved = await startProxyHarness({ AGENT_CONFIG: config, INTERACTIVE_RESERVE: "0" });
});

afterAll(async () => {
  await reserved?.stop();
  await unreserved?.stop();
  await fake?.close();
});

describe("provider concurrency by lane", () => {
  it("serves an interactive call in the reserved slot while a batch flood queues, and fails no batch call", async () => {
    fake.reset();
    fake.setHandler(async (body) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((resolve) => setTimeout(resolve, PROVIDER_LATENCY_MS));
      active--;
      return { content: `answer to ${lastUserText(body)}` };
    });
    peak = 0;
    const flood = Promise.allSettled(
      Array.from({ length: 24 }, (_, index) =>
        reserved.chat({ messages: user(`batch ${index}`), tier: "fast", meta: batch() }),
      ),
    );
    // batch takes 3 of the 4 slots; the other 21 wait in the batch lane
    await until(() => reserved.proxy.gateway.queued("narrow").batch === 21, "the batch queue to fill");
    const urgent = (await reserved.chat({ messages: user("urgent"), tier: "fast" })) as ModelChatReply;
    expect(urgent.message.content).toBe("answer to urgent");
    // answered while most of the batch queue still waits...
    expect(reserved.proxy.gateway.queued("narrow").batch).toBeGreaterThanOrEqual(15);
    // ...because it reached the provider right after the 3 batch calls already running
    const received = fake.chatRequests().map(lastUserText);
    expect(received.indexOf("urgent")).toBe(3);

    const replies = await flood;
    expect(replies.every((reply) => reply.status === "fulfilled")).toBe(true);
    expect(peak).toBe(4);
  });

  it("without a reserve, an interactive call still goes before every queued batch call", async () => {
    fake.reset();
    fake.setHandler(async (body) => {
      await new Promise((resolve) => setTimeout(resolve, PROVIDER_LATENCY_MS));
      return { content: `answer to ${lastUserText(body)}` };
    });
    const flood = Promise.allSettled(
      Array.from({ length: 16 }, (_, index) =>
        unreserved.chat({ messages: user(`batch ${index}`), tier: "fast", meta: batch() }),
      ),
    );
    await until(() => unreserved.proxy.gateway.queued("narrow").batch === 12, "the batch queue to fill");
    const urgent = (await unreserved.chat({ messages: user("urgent"), tier: "fast" })) as ModelChatReply;
    expect(urgent.message.content).toBe("answer to urgent");
    // batch held all 4 slots; the first one freed went to the interactive call
    const received = fake.chatRequests().map(lastUserText);
    expect(received.indexOf("urgent")).toBe(4);
    const replies = await flood;
    expect(replies.every((reply) => reply.status === "fulfilled")).toBe(true);
  });
});

describe("provider RPM by lane", () => {
  it("keeps a fifth of the window for interactive calls: batch is refused at 80 %", async () => {
    await insideOneWindow();
    fake.reset();
    fake.setHandler(() => ({ content: "ok" }));
    const batchReplies = [];
    for (let index = 0; index < 10; index++) {
      batchReplies.push(
        await reserved.chat({ messages: user(`rated batch ${index}`), tier: "rated", meta: batch() }).then(
          () => "ok",
          (error: unknown) => error,
        ),
      );
    }
    expect(batchReplies.slice(0, 8)).toEqual(Array(8).fill("ok"));
    for (const refused of batchReplies.slice(8)) {
      expect(refused).toBeInstanceOf(RuntimeError);
      expect(refused).toMatchObject({ code: "rate_limited", retryable: true });
      expect((refused as RuntimeError).retryAfterMs).toBeGreaterThan(0);
    }
    // the headroom is still there for interactive calls
    for (const index of [1, 2]) {
      const reply = (await reserved.chat({
        messages: user(`rated urgent ${index}`),
        tier: "rated",
      })) as ModelChatReply;
      expect(reply.provider).toBe("rated");
    }
    // and the provider's own limit holds for everyone
    await expect(reserved.chat({ messages: user("rated urgent 3"), tier: "rated" })).rejects.toMatchObject({
      code: "rate_limited",
    });
    expect(fake.chatRequests().filter((body) => body.model === "r")).toHaveLength(10);
  });
});

describe("the endpoint's in-flight bound by lane", () => {
  it("answers batch overloaded past its share while interactive requests still get in", async () => {
    const config = writeConfigFile({
      providers: { wide: { baseUrl: fake.url, apiKey: "k" } },
      models: { w: { provider: "wide" } },
      tiers: { fast: ["w"] },
    });
    const small = await startProxyHarness({ AGENT_CONFIG: config, MAX_IN_FLIGHT: "4" });
    try {
      fake.reset();
      fake.setHandler(async () => {
        await new Promise((resolve) => setTimeout(resolve, 400));
        return { content: "slow" };
      });
      const flood = Promise.allSettled(
        Array.from({ length: 6 }, (_, index) =>
          small.chat({ messages: user(`bound batch ${index}`), tier: "fast", meta: batch() }),
        ),
      );
      await until(() => fake.chatRequests().length === 3, "three batch calls at the provider");
      const urgent = (await small.chat({ messages: user("bound urgent"), tier: "fast" })) as ModelChatReply;
      expect(urgent.message.content).toBe("slow");
      const results = await flood;
      const refused = results.flatMap((result) => (result.status === "rejected" ? [result.reason] : []));
      expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(3);
      expect(refused).toHaveLength(3);
      for (const error of refused) {
        expect(error).toMatchObject({ code: "overloaded", retryable: true });
        expect((error as RuntimeError).message).toMatch(/requests in flight/);
      }
    } finally {
      await small.stop();
    }
  });
});
