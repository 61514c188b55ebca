import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cosineSimilarity, fakeEmbedding } from "./embedding.js";
import { type FakeOpenAI, startFakeOpenAI, textStep, toolCallStep } from "./fake-openai.js";

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
    expect((limited as InstanceType<typeof OpenAI.APIError>).status).toBe(429);
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

  it("drops the connection on a disconnect fault", async () => {
    fake.enqueue({ fault: { kind: "disconnect" } });
    await expect(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
    const after = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "again" }],
    });
    expect(after.choices[0]?.message.content).toBe("echo: again");
  });

  it("keeps scripted steps through a persistent fault and serves them once it clears", async () => {
    fake.enqueue(textStep("after the outage"));
    fake.setFault({ kind: "status", status: 503 });
    await expect(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toBeInstanceOf(OpenAI.APIError);
    fake.setFault(null);
    const completion = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
    });
    expect(completion.choices[0]?.message.content).toBe("after the outage");
  });

  it("breaks a stream even when it has fewer chunks than asked for", async () => {
    fake.enqueue({ content: "short", fault: { kind: "stream-break", afterChunks: 100 } });
    const stream = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    let text = "";
    const read = async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    };
    await expect(read()).rejects.toThrow();
    expect(text).toBe("short");
  });

  it("streams several tool calls, reports the scripted model and usage, and passes the index", async () => {
    const indexes: number[] = [];
    fake.setHandler((_body, { index }) => {
      indexes.push(index);
      return {
        toolCalls: [
          { id: "call_a", name: "first", arguments: { a: 1 } },
          { name: "second", arguments: '{"b":2}' },
        ],
        usage: { prompt_tokens: 7, completion_tokens: 3, cached_tokens: 5 },
        model: "scripted-model",
      };
    });
    const stream = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const calls = new Map<number, { id: string; name: string; args: string }>();
    let finish: string | null | undefined;
    let cached: number | undefined;
    let model = "";
    for await (const chunk of stream) {
      model = chunk.model;
      finish = chunk.choices[0]?.finish_reason ?? finish;
      cached = chunk.usage?.prompt_tokens_details?.cached_tokens ?? cached;
      for (const delta of chunk.choices[0]?.delta?.tool_calls ?? []) {
        const call = calls.get(delta.index) ?? { id: "", name: "", args: "" };
        call.id += delta.id ?? "";
        call.name += delta.function?.name ?? "";
        call.args += delta.function?.arguments ?? "";
        calls.set(delta.index, call);
      }
    }
    expect(model).toBe("scripted-model");
    expect(finish).toBe("tool_calls");
    expect(cached).toBe(5);
    expect(calls.get(0)).toEqual({ id: "call_a", name: "first", args: '{"a":1}' });
    expect(calls.get(1)?.name).toBe("second");
    expect(calls.get(1)?.args).toBe('{"b":2}');

    const plain = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
    });
    expect(plain.choices[0]?.message.content).toBeNull();
    expect(plain.usage).toMatchObject({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    expect(indexes).toEqual([0, 1]);
    fake.reset();
    fake.setHandler((_body, { index }) => textStep(`call ${index}`));
    const afterReset = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
    });
    expect(afterReset.choices[0]?.message.content).toBe("call 0");
  });

  it("records every request and answers models, unknown paths and bad JSON in the OpenAI shape", async () => {
    await client.chat.completions.create({ model: "m2", messages: [{ role: "user", content: "hi" }] });
    const models = await client.models.list();
    expect(models.data.length).toBeGreaterThan(0);

    const missing = await fetch(`${fake.url}/nowhere`, { method: "POST", body: "{}" });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { type: "invalid_request_error", param: null } });

    const bad = await fetch(`${fake.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(bad.status).toBe(400);
    const badBody = (await bad.json()) as { error: Record<string, unknown> };
    expect(Object.keys(badBody.error).sort()).toEqual(["code", "message", "param", "type"]);

    expect(fake.requests.map((entry) => `${entry.method} ${entry.path}`)).toEqual([
      "POST /v1/chat/completions",
      "GET /v1/models",
      "POST /v1/nowhere",
      "POST /v1/chat/completions",
    ]);
    expect(fake.requests[0]?.headers.authorization).toBe("Bearer test");
    expect(fake.requests[0]?.receivedAt).toBeGreaterThan(0);
    expect(fake.requests[3]?.body).toBe("{not json");
    expect(fake.chatRequests().map((body) => body.model)).toEqual(["m2"]);
  });

  it("folds synonyms and plurals in embeddings and applies persistent faults to them", async () => {
    const options = { synonyms: [["car", "automobile", "vehicle"]] };
    const cars = fakeEmbedding("fast cars", options);
    expect(cosineSimilarity(cars, fakeEmbedding("fast vehicle", options))).toBeCloseTo(1, 5);
    expect(fakeEmbedding("x", { dimensions: 16 })).toHaveLength(16);

    const floats = await client.embeddings.create({
      model: "e",
      input: "one text",
      encoding_format: "float",
    });
    expect(floats.data[0]?.embedding).toEqual(fakeEmbedding("one text", options));
    expect(floats.usage.total_tokens).toBeGreaterThan(0);

    fake.setFault({ kind: "status", status: 500 });
    await expect(client.embeddings.create({ model: "e", input: "x" })).rejects.toBeInstanceOf(
      OpenAI.InternalServerError,
    );
  });
});
