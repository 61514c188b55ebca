import { ModelConfig } from "@agent-runtime/config";
import { describe, expect, it } from "vitest";
import { parseRetryAfter, retryDelayMs } from "./backoff.js";
import { CircuitBreaker } from "./breaker.js";
import { offlineCompletion } from "./offline-model.js";
import { costOf } from "./pricing.js";

describe("price math", () => {
  const model = ModelConfig.parse({ provider: "p", pricing: { input: 2.5, output: 10, cachedInput: 1.25 } });

  it("charges per 1M tokens, cached input at the cached price", () => {
    const usage = { promptTokens: 10_000, completionTokens: 2_000, cachedTokens: 4_000, totalTokens: 12_000 };
    // 6000 * 2.5 + 4000 * 1.25 + 2000 * 10 = 40000 per 1M
    expect(costOf(model, usage)).toBeCloseTo(0.04, 12);
  });

  it("uses the input price when no cached price is set, and costs nothing for unknown models", () => {
    const plain = ModelConfig.parse({ provider: "p", pricing: { input: 1, output: 1 } });
    const usage = {
      promptTokens: 1_000_000,
      completionTokens: 0,
      cachedTokens: 500_000,
      totalTokens: 1_000_000,
    };
    expect(costOf(plain, usage)).toBe(1);
    expect(costOf(undefined, usage)).toBe(0);
  });
});

describe("backoff", () => {
  it("grows exponentially with jitter, capped, and lets a longer Retry-After win", () => {
    const options = { baseMs: 100, maxMs: 1000 };
    expect(retryDelayMs(0, options, undefined, () => 0)).toBe(50);
    expect(retryDelayMs(0, options, undefined, () => 1)).toBe(100);
    expect(retryDelayMs(3, options, undefined, () => 1)).toBe(800);
    expect(retryDelayMs(10, options, undefined, () => 1)).toBe(1000);
    expect(retryDelayMs(0, options, 3000, () => 1)).toBe(3000);
  });

  it("parses Retry-After in seconds, as an HTTP date, and retry-after-ms", () => {
    const headers = (values: Record<string, string>) => ({ get: (name: string) => values[name] ?? null });
    expect(parseRetryAfter(headers({ "retry-after": "2" }))).toBe(2000);
    expect(parseRetryAfter(headers({ "retry-after-ms": "150", "retry-after": "9" }))).toBe(150);
    const inFive = new Date(Date.now() + 5000).toUTCString();
    const parsed = parseRetryAfter(headers({ "retry-after": inFive }))!;
    expect(parsed).toBeGreaterThan(3000);
    expect(parsed).toBeLessThanOrEqual(5000);
    expect(parseRetryAfter(headers({ "retry-after": "soon" }))).toBeUndefined();
  });
});

describe("circuit breaker", () => {
  it("opens after consecutive failures, lets one probe through after the cooldown, closes on success", async () => {
    const changes: string[] = [];
    const breaker = new CircuitBreaker("p", { failures: 2, cooldownMs: 40 }, (_name, state) =>
      changes.push(state),
    );
    breaker.failure();
    expect(breaker.state).toBe("closed");
    breaker.failure();
    expect(breaker.state).toBe("open");
    expect(breaker.tryPass()).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(breaker.tryPass()).toBe(true);
    expect(breaker.tryPass()).toBe(false); // one probe at a time
    breaker.failure(); // the probe failed: open again
    expect(breaker.state).toBe("open");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(breaker.tryPass()).toBe(true);
    breaker.success();
    expect(breaker.state).toBe("closed");
    expect(changes).toEqual(["open", "half-open", "open", "half-open", "closed"]);
  });

  it("gives a probe slot back without closing when the call was not made", async () => {
    const breaker = new CircuitBreaker("p", { failures: 1, cooldownMs: 10 });
    breaker.failure();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(breaker.tryPass()).toBe(true);
    breaker.release(); // e.g. our own rate limit said no
    expect(breaker.state).toBe("half-open");
    expect(breaker.tryPass()).toBe(true);
  });
});

describe("offline dev model", () => {
  const calculator = [
    {
      type: "function" as const,
      function: { name: "calculator", parameters: { type: "object", properties: {} } },
    },
  ];

  it("asks for the calculator on arithmetic, then answers with its result", () => {
    const ask = offlineCompletion({
      messages: [{ role: "user", content: "what is 2+3*4" }],
      tools: calculator,
    });
    expect(ask.finishReason).toBe("tool_calls");
    const call = ask.message.tool_calls?.[0];
    expect(call?.function).toEqual({
      name: "calculator",
      arguments: JSON.stringify({ expression: "2+3*4" }),
    });
    const answer = offlineCompletion({
      messages: [
        { role: "user", content: "what is 2+3*4" },
        ask.message,
        { role: "tool", tool_call_id: call!.id, content: JSON.stringify({ result: 14 }) },
      ],
      tools: calculator,
    });
    expect(answer.message.content).toBe("The result is 14.");
    expect(answer.usage.promptTokens).toBeGreaterThan(0);
  });

  it("answers briefly and deterministically otherwise", () => {
    const one = offlineCompletion({ messages: [{ role: "user", content: "hello there" }] });
    const two = offlineCompletion({ messages: [{ role: "user", content: "hello there" }] });
    expect(one.message.content).toContain("hello there");
    expect(one).toEqual(two);
    // arithmetic without a calculator on offer is just echoed
    expect(offlineCompletion({ messages: [{ role: "user", content: "what is 2+2" }] }).finishReason).toBe(
      "stop",
    );
  });
});
