/**
 * A client written for OpenAI that only changed its base URL: the official `openai` SDK against
 * all five services, with the fake provider recording what reached it. Model options keep their
 * meaning end to end, `parse()` and `runTools()` work, a model may be named instead of an agent,
 * and `/v1/embeddings` answers through the model proxy.
 */
import { contentText, type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type Stack, startStack } from "../support/stack.js";

const API_KEY = "sk-e2e-openai-sdk-key";

let fake: FakeOpenAI;
let stack: Stack;
let client: OpenAI;

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "the weather of a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
      additionalProperties: false,
    },
  },
};

const Weather = z.object({ city: z.string(), celsius: z.number(), sunny: z.boolean() });

beforeAll(async () => {
  fake = await startFakeOpenAI();
  stack = await startStack({ openaiBaseUrl: fake.url, bootstrapApiKey: API_KEY });
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 30_000 });
});

afterAll(async () => {
  await stack?.stop();
  await fake?.close();
});

/** The provider calls made while `action` ran. */
async function providerCalls<T>(action: () => Promise<T>) {
  const before = fake.chatRequests().length;
  const result = await action();
  return { result, calls: fake.chatRequests().slice(before) };
}

function lastUser(body: { messages: { role: string; content?: unknown }[] }): string {
  const user = [...body.messages].reverse().find((message) => message.role === "user");
  return contentText(user?.content);
}

describe("the official openai SDK against the runtime", () => {
  it("forwards every model option to the provider with its OpenAI name", async () => {
    fake.setHandler(() => ({ content: "ok" }));
    const { result, calls } = await providerCalls(() =>
      client.chat.completions.create({
        model: "assistant",
        messages: [{ role: "user", content: "options please" }],
        temperature: 0.3,
        top_p: 0.9,
        seed: 11,
        stop: ["END"],
        presence_penalty: 0.25,
        frequency_penalty: 0.5,
        logit_bias: { "1234": -50 },
        parallel_tool_calls: false,
        response_format: { type: "text" },
        max_completion_tokens: 64,
      }),
    );
    expect(result.choices[0]?.message.content).toBe("ok");
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      temperature: 0.3,
      top_p: 0.9,
      seed: 11,
      stop: ["END"],
      presence_penalty: 0.25,
      frequency_penalty: 0.5,
      logit_bias: { "1234": -50 },
      parallel_tool_calls: false,
      max_tokens: 64,
    });
    expect(calls[0]?.response_format).toBeUndefined();
    expect(result._request_id).toMatch(/^req_/);
  });

  it("tool_choice none: the provider is told so and no tool call comes back, even from a provider that ignores it", async () => {
    // a provider that calls the calculator whatever it is told
    fake.setHandler((body) =>
      body.messages.some((message) => message.role === "tool")
        ? { content: "from the tool" }
        : { toolCalls: [{ id: "call_x", name: "calculator", arguments: { expression: "1+1" } }] },
    );
    const { result, calls } = await providerCalls(() =>
      client.chat.completions.create({
        model: "assistant",
        messages: [{ role: "user", content: "what is 1+1, without tools" }],
        tools: [weatherTool],
        tool_choice: "none",
      }),
    );
    expect(calls).toHaveLength(1);
    expect(calls[0]?.tool_choice).toBe("none");
    expect(result.choices[0]?.message.tool_calls).toBeUndefined();
    expect(result.choices[0]?.finish_reason).toBe("stop");
  });

  it("tool_choice naming a client tool forces it on the first step and the call goes back to the client", async () => {
    fake.setHandler((body) =>
      typeof body.tool_choice === "object"
        ? { toolCalls: [{ id: "call_w", name: "get_weather", arguments: { city: "Oslo" } }] }
        : { content: "I would rather chat" },
    );
    const { result, calls } = await providerCalls(() =>
      client.chat.completions.create({
        model: "assistant",
        messages: [{ role: "user", content: "weather in Oslo" }],
        tools: [weatherTool],
        tool_choice: { type: "function", function: { name: "get_weather" } },
      }),
    );
    expect(calls).toHaveLength(1);
    expect(calls[0]?.tool_choice).toEqual({ type: "function", function: { name: "get_weather" } });
    expect(result.choices[0]?.finish_reason).toBe("tool_calls");
    expect(result.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      function: { name: "get_weather", arguments: '{"city":"Oslo"}' },
    });
  });

  it("parse() with a zod response format: json_schema reaches the provider, the answer is parsed", async () => {
    fake.setHandler((body) => {
      const format = body.response_format as { type: string; json_schema?: { strict?: boolean } } | undefined;
      if (format?.type !== "json_schema") return { content: "not json" };
      return { content: JSON.stringify({ city: lastUser(body), celsius: 21.5, sunny: true }) };
    });
    const { result, calls } = await providerCalls(() =>
      client.chat.completions.parse({
        model: "assistant",
        messages: [{ role: "user", content: "Lisbon" }],
        response_format: zodResponseFormat(Weather, "weather"),
      }),
    );
    expect(calls[0]?.response_format).toMatchObject({
      type: "json_schema",
      json_schema: { name: "weather", strict: true },
    });
    expect(result.choices[0]?.message.parsed).toEqual({ city: "Lisbon", celsius: 21.5, sunny: true });
  });

  it("a structured answer that breaks its schema is an error, never handed to the client's parser", async () => {
    fake.setHandler(() => ({ content: JSON.stringify({ city: "Rome", celsius: "warm" }) }));
    const error = await client.chat.completions
      .parse({
        model: "assistant",
        messages: [{ role: "user", content: "Rome" }],
        response_format: zodResponseFormat(Weather, "weather"),
      })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toMatch(
      /response_format schema "weather"/,
    );
  });

  it("runTools() runs the client's own function and sends its result back", async () => {
    fake.setHandler((body) => {
      const result = body.messages.find((message) => message.role === "tool");
      if (result) return { content: `It is ${contentText(result.content)} in Oslo.` };
      return { toolCalls: [{ id: "call_rt", name: "get_weather", arguments: { city: "Oslo" } }] };
    });
    const seen: string[] = [];
    const runner = client.chat.completions.runTools({
      model: "assistant",
      messages: [{ role: "user", content: "weather in Oslo?" }],
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "the weather in a city",
            parameters: weatherTool.function.parameters,
            parse: JSON.parse,
            function: (args: { city: string }) => {
              seen.push(args.city);
              return "sunny";
            },
          },
        },
      ],
    });
    expect(await runner.finalContent()).toBe("It is sunny in Oslo.");
    expect(seen).toEqual(["Oslo"]);
  });

  it("a model name runs a plain turn on that model: the client's messages and tools only", async () => {
    fake.setHandler((body) => ({ content: `answered by ${body.model}` }));
    const { result, calls } = await providerCalls(() =>
      client.chat.completions.create({
        model: "fake-strong",
        messages: [{ role: "user", content: "hello there" }],
      }),
    );
    expect(calls.map((call) => call.model)).toEqual(["fake-strong"]);
    // no system prompt and no tools of an agent: what the client sent, as it sent it
    expect(calls[0]?.messages).toEqual([{ role: "user", content: "hello there" }]);
    expect(calls[0]?.tools ?? []).toEqual([]);
    expect(result.model).toBe("fake-strong");
    expect(result.choices[0]?.message.content).toBe("answered by fake-strong");

    // the client's own tool: offered alone, and its call comes back to the client to run
    fake.setHandler(() => ({ toolCalls: [{ id: "call_w", name: "weather", arguments: { city: "Oslo" } }] }));
    const withTool = await providerCalls(() =>
      client.chat.completions.create({
        model: "fake-fast",
        messages: [
          { role: "system", content: "the client's own system prompt" },
          { role: "user", content: "weather in Oslo?" },
        ],
        tools: [
          {
            type: "function",
            function: {
              name: "weather",
              parameters: { type: "object", properties: { city: { type: "string" } } },
            },
          },
        ],
      }),
    );
    expect(withTool.calls).toHaveLength(1);
    expect(withTool.calls[0]?.messages).toEqual([
      { role: "system", content: "the client's own system prompt" },
      { role: "user", content: "weather in Oslo?" },
    ]);
    expect((withTool.calls[0]?.tools ?? []).map((tool) => tool.function.name)).toEqual(["weather"]);
    expect(withTool.result.choices[0]?.finish_reason).toBe("tool_calls");
    const returned = withTool.result.choices[0]?.message.tool_calls?.[0];
    expect(returned?.type === "function" ? returned.function.name : undefined).toBe("weather");

    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(expect.arrayContaining(["assistant", "fake-fast", "fake-strong", "fake-embed"]));
    expect(ids.some((id) => id.startsWith("@"))).toBe(false);
    await expect(
      client.chat.completions.create({ model: "gpt-unknown", messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(
      client.chat.completions.create({ model: "@gateway", messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("a seed with temperature 0 is deterministic: the repeated request is answered from the cache", async () => {
    fake.setHandler(() => ({ content: "the same every time" }));
    const ask = () =>
      client.chat.completions.create({
        model: "fake-fast",
        messages: [{ role: "user", content: "a deterministic question" }],
        temperature: 0,
        seed: 5,
      });
    const first = await providerCalls(ask);
    const second = await providerCalls(ask);
    expect(first.calls).toHaveLength(1);
    expect(second.calls).toHaveLength(0);
    expect(second.result.choices[0]?.message.content).toBe("the same every time");
  });

  it("embeds through the model proxy in OpenAI's format, with usage, cached the second time", async () => {
    const embeddingCalls = () => fake.requests.filter((entry) => entry.path === "/v1/embeddings").length;
    const before = embeddingCalls();
    const first = await client.embeddings.create({ model: "fake-embed", input: ["alpha", "beta"] });
    expect(first.data).toHaveLength(2);
    expect(first.data[0]?.embedding.length).toBeGreaterThan(8);
    expect(first.usage.prompt_tokens).toBeGreaterThan(0);
    // no model named: the default embedding model answers (the SDK's type insists on one)
    const again = await client.embeddings.create({ input: "alpha" } as OpenAI.EmbeddingCreateParams);
    expect(again.model).toBe("fake-embed");
    expect(again.data[0]?.embedding[0]).toBeCloseTo(first.data[0]!.embedding[0]!, 5);
    expect(embeddingCalls() - before).toBe(1);
  });

  it("streams with the SDK's stream helper, with a request id", async () => {
    fake.setHandler(() => ({ content: "one two three four" }));
    const stream = client.chat.completions.stream({
      model: "assistant",
      messages: [{ role: "user", content: "count" }],
    });
    const deltas: string[] = [];
    stream.on("content", (delta) => deltas.push(delta));
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.message.content).toBe("one two three four");
    expect(deltas.join("")).toBe("one two three four");
  });
});
