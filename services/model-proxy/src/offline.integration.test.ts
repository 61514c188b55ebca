import { Endpoints, ModelStreamChunk } from "@agent-runtime/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxyHarness, startProxyHarness } from "./test-support.js";

let harness: ProxyHarness;

beforeAll(async () => {
  // no OPENAI_BASE_URL, no OPENAI_API_KEY, no AGENT_CONFIG
  harness = await startProxyHarness({});
});

afterAll(async () => {
  await harness?.stop();
});

const calculator = {
  type: "function" as const,
  function: {
    name: "calculator",
    parameters: { type: "object", properties: { expression: { type: "string" } } },
  },
};

describe("offline dev model (no provider configured)", () => {
  it("runs a calculator round trip over model.chat", async () => {
    const question = { role: "user" as const, content: "what is 2+3*4" };
    const ask = await harness.chat({ messages: [question], tools: [calculator] });
    expect(ask.provider).toBe("offline");
    expect(ask.finishReason).toBe("tool_calls");
    const call = ask.message.tool_calls?.[0];
    expect(JSON.parse(call?.function.arguments ?? "{}")).toEqual({ expression: "2+3*4" });
    const answer = await harness.chat({
      messages: [
        question,
        ask.message,
        { role: "tool", tool_call_id: call!.id, content: JSON.stringify({ result: 14 }) },
      ],
      tools: [calculator],
    });
    expect(answer.message.content).toBe("The result is 14.");
    expect(answer.costUsd).toBe(0);
  });

  it("streams its answer as deltas, so a chat UI shows text", async () => {
    const subject = `test.offline.${Date.now()}`;
    const chunks: ModelStreamChunk[] = [];
    const subscription = harness.client.subscribe(subject, ModelStreamChunk, (chunk) => chunks.push(chunk));
    await harness.client.nc.flush();
    const reply = await harness.chat({
      messages: [{ role: "user", content: "tell me something" }],
      streamSubject: subject,
    });
    await harness.client.nc.flush();
    subscription.unsubscribe();
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, index) => index));
    expect(chunks.map((chunk) => chunk.content ?? "").join("")).toBe(reply.message.content);
  });

  it("keeps tool_choice and response_format", async () => {
    const question = { role: "user" as const, content: "what is 2+3*4" };
    const none = await harness.chat({ messages: [question], tools: [calculator], toolChoice: "none" });
    expect(none.message.tool_calls).toBeUndefined();
    const forced = await harness.chat({
      messages: [{ role: "user", content: "hello" }],
      tools: [calculator],
      toolChoice: { type: "function", function: { name: "calculator" } },
    });
    expect(forced.message.tool_calls?.[0]?.function.name).toBe("calculator");
    const structured = await harness.chat({
      messages: [{ role: "user", content: "hello" }],
      responseFormat: {
        type: "json_schema",
        json_schema: {
          name: "greeting",
          strict: true,
          schema: {
            type: "object",
            properties: { text: { type: "string" }, count: { type: "integer" }, tags: { type: "array" } },
            required: ["text", "count", "tags"],
          },
        },
      },
    });
    expect(JSON.parse(String(structured.message.content))).toMatchObject({ count: 0, tags: [] });
  });

  it("embeds deterministically without a network", async () => {
    const meta = { v: 1 as const, tenant: "t1", requestId: "off-emb", deadline: Date.now() + 5000 };
    const first = await harness.client.request(Endpoints.modelEmbed, {
      meta,
      input: ["the cat sat", "on the mat"],
      cache: false,
    });
    const second = await harness.client.request(Endpoints.modelEmbed, {
      meta,
      input: ["the cat sat"],
      cache: false,
    });
    expect(first.provider).toBe("offline");
    expect(first.embeddings).toHaveLength(2);
    expect(second.embeddings[0]).toEqual(first.embeddings[0]);
    expect(first.embeddings[0]).not.toEqual(first.embeddings[1]);
  });
});
