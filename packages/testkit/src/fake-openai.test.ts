import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cosineSimilarity, fakeEmbedding } from "./embedding.js";
import { type FakeOpenAI, startFakeOpenAI, toolCallStep } from "./fake-openai.js";

let fake: FakeOpenAI;
let client: OpenAI;

beforeAll(async () => {
  fake = await startFakeOpenAI({ synonyms: [["car", "automobile", "vehicle"]] });
  client = new OpenAI({ baseURL: fake.url, apiKey: "test", maxRetries: 0, timeout: 2000 });
});
afterEach(() => fake.reset());
afterAll(() => fake.close());

describe("fake OpenAI server through the real client", () => {
  it("answers a plain completion with usage and records the request", async () => {
    const completion = await client.chat.completions.create({
      model: "m1",
      messages: [{ role: "user", content: "hello there" }],
    });
    expect(completion.choices[0]?.message.content).toBe("echo: hello there");
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
    expect(fake.chatRequests()[0]?.model).toBe("m1");
  });

  it("scripts tool calls", async () => {
    fake.enqueue(toolCallStep("calculator", { expression: "1+1" }));
    const completion = await client.chat.completions.create({
      model: "m1",
      messages: [{ role: "user", content: "add" }],
      tools: [{ type: "function", function: { name: "calculator", parameters: { type: "object" } } }],
    });
    const call = completion.choices[0]?.message.tool_calls?.[0];
    expect(completion.choices[0]?.finish_reason).toBe("tool_calls");
    expect(call?.type === "function" && call.function.name).toBe("calculator");
    expect(call?.type === "function" && JSON.parse(call.function.arguments)).toEqual({ expression: "1+1" });
  });

  it("streams content and tool calls with usage at the end", async () => {
    fake.enqueue({ content: "one two three four" });
    const stream = await client.chat.completions.create({
      model: "m1",
      messages: [{ role: "user", content: "x" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let chunks = 0;
    let usage = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? "";
      usage = chunk.usage?.total_tokens ?? usage;
    }
    expect(text).toBe("one two three four");
    expect(chunks).toBeGreaterThan(4);
    expect(usage).toBeGreaterThan(0);

    fake.enqueue(toolCallStep("lookup", { q: "abc" }));
    const toolStream = await client.chat.completions.create({
      model: "m1",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    let args = "";
    let name = "";
    for await (const chunk of toolStream) {
      const call = chunk.choices[0]?.delta?.tool_calls?.[0];
      name += call?.function?.name ?? "";
      args += call?.function?.arguments ?? "";
    }
    expect(name).toBe("lookup");
    expect(JSON.parse(args)).toEqual({ q: "abc" });
  });

  it("injects 429 with Retry-After, 500, malformed bodies, hangs and broken streams", async () => {
    fake.enqueue({ fault: { kind: "status", status: 429, retryAfter: 2 } });
    const limited = await client.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect((limited as InstanceType<typeof OpenAI.RateLimitError>).headers?.get("retry-after")).toBe("2");

    fake.setFault({ kind: "status", status: 500 });
    await expect(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    fake.setFault({ kind: "malformed" });
    await expect(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toThrow();
    fake.setFault({ kind: "hang" });
    const quick = new OpenAI({ baseURL: fake.url, apiKey: "t", maxRetries: 0, timeout: 300 });
    await expect(
      quick.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    fake.setFault(null);

    fake.enqueue({ content: "a b c d e f g h", fault: { kind: "stream-break", afterChunks: 3 } });
    const broken = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    const read = async () => {
      for await (const _chunk of broken) {
        // drain
      }
    };
    await expect(read()).rejects.toThrow();
  });

  it("gives deterministic embeddings where related texts are closer", async () => {
    const result = await client.embeddings.create({
      model: "e",
      input: ["my car is red", "the automobile is red", "quarterly tax filing deadline"],
    });
    const [car, automobile, tax] = result.data.map((entry) => entry.embedding);
    expect(cosineSimilarity(car!, automobile!)).toBeGreaterThan(0.9);
    expect(cosineSimilarity(car!, tax!)).toBeLessThan(0.5);
    expect(fakeEmbedding("same text")).toEqual(fakeEmbedding("same text"));
  });
});
