import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASE_URL } from "../support/isolation.js";
import { type Stack, startStack } from "../support/stack.js";

const API_KEY = "sk-e2e-bootstrap-key";

let fake: FakeOpenAI;
let stack: Stack;
let client: OpenAI;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  stack = await startStack({ openaiBaseUrl: fake.url, bootstrapApiKey: API_KEY });
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 30_000 });
});

afterAll(async () => {
  await stack?.stop();
  await fake?.close();
});

/** The fake model asks for the calculator first, then answers with what the tool returned. */
function scriptCalculatorThenAnswer() {
  fake.setHandler((body) => {
    const toolMessage = [...body.messages].reverse().find((message) => message.role === "tool");
    if (!toolMessage) {
      return {
        toolCalls: [{ id: "call_calc_1", name: "calculator", arguments: { expression: "(17 + 4) * 3" } }],
      };
    }
    return { content: `The result is ${String(toolMessage.content)}.` };
  });
}

describe("one chat turn through all five services", () => {
  it("runs the calculator tool and answers with its real result", async () => {
    scriptCalculatorThenAnswer();
    const before = fake.chatRequests().length;
    const completion = await client.chat.completions.create({
      model: "assistant",
      messages: [{ role: "user", content: "What is (17 + 4) * 3?" }],
    });
    const calls = fake.chatRequests().slice(before);
    expect(calls).toHaveLength(2);
    // the model was offered the calculator, then saw the tool's real output (63)
    expect(JSON.stringify(calls[0]?.tools ?? [])).toContain("calculator");
    const toolMessages = (calls[1]?.messages ?? []).filter((message) => message.role === "tool");
    expect(toolMessages).toHaveLength(1);
    expect(String(toolMessages[0]?.content)).toContain("63");
    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0]?.message.content).toContain("63");
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
  });

  it("streams chunks ending in [DONE]", async () => {
    fake.setHandler(() => ({ content: "Streaming works across every hop of the runtime." }));
    const response = await fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "assistant",
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: "stream please" }],
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/text\/event-stream/);
    const text = await response.text();
    const dataLines = text.split("\n").filter((line) => line.startsWith("data: "));
    expect(dataLines.at(-1)).toBe("data: [DONE]");
    const chunks = dataLines.slice(0, -1).map((line) => JSON.parse(line.slice(6)));
    const content = chunks.map((chunk) => chunk.choices?.[0]?.delta?.content ?? "").join("");
    expect(chunks.length).toBeGreaterThan(2);
    expect(content).toBe("Streaming works across every hop of the runtime.");
    expect(chunks.every((chunk) => chunk.object === "chat.completion.chunk")).toBe(true);
    expect(chunks.some((chunk) => chunk.usage?.total_tokens > 0)).toBe(true);

    // the official client streams the same way
    const stream = await client.chat.completions.create({
      model: "assistant",
      stream: true,
      messages: [{ role: "user", content: "again" }],
    });
    let streamed = "";
    let pieces = 0;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta?.content ?? "";
      pieces++;
    }
    expect(pieces).toBeGreaterThan(2);
    expect(streamed).toBe("Streaming works across every hop of the runtime.");
  });

  it("keeps the thread in Postgres and continues it with x-thread-id", async () => {
    fake.setHandler((body) => {
      const users = body.messages
        .filter((message) => message.role === "user")
        .map((message) => String(message.content));
      return { content: `I have seen: ${users.join(" | ")}` };
    });
    const first = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "my name is Ada" }] })
      .withResponse();
    const threadId = first.response.headers.get("x-thread-id");
    expect(threadId).toBeTruthy();
    const second = await client.chat.completions.create(
      { model: "assistant", messages: [{ role: "user", content: "what is my name?" }] },
      { headers: { "x-thread-id": threadId! } },
    );
    expect(second.choices[0]?.message.content).toContain("my name is Ada");
    expect(second.choices[0]?.message.content).toContain("what is my name?");

    const db = new pg.Client({ connectionString: DATABASE_URL });
    await db.connect();
    try {
      const rows = await db.query(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE '%message%'`,
        [stack.isolation.schema],
      );
      expect(rows.rows.length).toBeGreaterThan(0);
      const table =
        rows.rows.find((row) => row.table_name === "messages")?.table_name ?? rows.rows[0].table_name;
      // memory stores a journaled turn in the background (the second turn read the first one either way)
      let stored = await db.query(
        `SELECT * FROM "${stack.isolation.schema}"."${table}" WHERE thread_id = $1`,
        [threadId],
      );
      for (let i = 0; i < 100 && stored.rows.length < 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        stored = await db.query(`SELECT * FROM "${stack.isolation.schema}"."${table}" WHERE thread_id = $1`, [
          threadId,
        ]);
      }
      const text = JSON.stringify(stored.rows);
      expect(stored.rows.length).toBe(4);
      expect(text).toContain("my name is Ada");
      expect(text).toContain("what is my name?");
    } finally {
      await db.end();
    }
  });

  it("returns calls of the client's own tools in OpenAI's format, and continues after their results", async () => {
    fake.setHandler((body) => {
      const result = body.messages.find((message) => message.role === "tool");
      if (!result)
        return { toolCalls: [{ id: "call_weather", name: "get_weather", arguments: { city: "Oslo" } }] };
      return { content: `It is ${String(result.content)} in Oslo.` };
    });
    const tools = [
      {
        type: "function" as const,
        function: {
          name: "get_weather",
          description: "weather of a city",
          parameters: { type: "object", properties: { city: { type: "string" } } },
        },
      },
    ];
    const first = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "weather in Oslo?" }], tools })
      .withResponse();
    const choice = first.data.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    const call = choice.message.tool_calls?.[0];
    expect(call?.type === "function" && call.function.name).toBe("get_weather");
    expect(call?.type === "function" && JSON.parse(call.function.arguments)).toEqual({ city: "Oslo" });
    expect(first.data.usage?.prompt_tokens).toBeGreaterThan(0);
    const second = await client.chat.completions.create(
      { model: "assistant", messages: [{ role: "tool", tool_call_id: call!.id, content: "12°C" }], tools },
      { headers: { "x-thread-id": first.response.headers.get("x-thread-id")! } },
    );
    expect(second.choices[0]?.message.content).toBe("It is 12°C in Oslo.");
  });

  it("answers a malformed body with 400 naming the field", async () => {
    const error = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "wizard", content: "hi" }] as never })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).message).toMatch(/messages\[0\]/);

    const raw = await fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "assistant", messages: "not a list" }),
    });
    expect(raw.status).toBe(400);
    const body = (await raw.json()) as { error: { type: string; message: string } };
    expect(body.error.message).toMatch(/messages/);
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/);
  });

  it("answers a missing or wrong key with 401", async () => {
    const wrong = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
    await expect(
      wrong.chat.completions.create({ model: "assistant", messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const missing = await fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "assistant", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(missing.status).toBe(401);
    const body = (await missing.json()) as { error: { type: string } };
    expect(body.error.type).toBeTruthy();
  });
});
