/**
 * Streams tell the truth (issue 12, item 5), on the whole stack with the official openai client:
 * the agent's own tool calls never reach the client, an agent with output checks streams only the
 * checked answer, the streamed text is the stored output, a failure before any output has its own
 * status, and a run's event stream resumed after a cut loses no event, under concurrency.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { contentText, type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import { ChatCompletionStream } from "openai/lib/ChatCompletionStream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type Stack, startStack } from "../support/stack.js";

const KEY = "sk-streams-truth";
let fake: FakeOpenAI;
let stack: Stack;
let client: OpenAI;

const http = (path: string, init: RequestInit = {}) => {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${KEY}`);
  if (init.body) headers.set("content-type", "application/json");
  return fetch(`${stack.url}${path}`, { ...init, headers });
};

const lastUser = (body: { messages: { role: string; content?: unknown }[] }) =>
  contentText(body.messages.findLast((message) => message.role === "user")?.content);

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler((body) => {
    const asked = lastUser(body);
    const toolResult = body.messages.find((message) => message.role === "tool");
    if (asked.startsWith("add ")) {
      if (toolResult) {
        const { result } = JSON.parse(contentText(toolResult.content)) as { result: unknown };
        return { content: `The total is ${String(result)}.`, chunkDelayMs: 2 };
      }
      return {
        ...(asked.includes("say so first") ? { content: "Let me add those." } : {}),
        toolCalls: [{ id: "call_add", name: "calculator", arguments: { expression: "2+3" } }],
      };
    }
    if (asked.startsWith("Your answer is invalid")) return { content: '{"total": 5}' };
    if (asked === "total as json") return { content: "the total is five", chunkDelayMs: 2 };
    if (asked.startsWith("contact"))
      return { content: "Write to ada@example.com any time.", chunkDelayMs: 2 };
    return { content: "one two three four five six seven eight", chunkDelayMs: 5 };
  });
  const configPath = join(mkdtempSync(join(tmpdir(), "streams-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      agents: {
        structured: {
          tools: [],
          guardrails: {
            outputJsonSchema: {
              type: "object",
              properties: { total: { type: "number" } },
              required: ["total"],
            },
          },
        },
        private: { tools: [], guardrails: { redactPii: ["email"] } },
      },
    }),
  );
  stack = await startStack({
    bootstrapApiKey: KEY,
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: configPath },
  });
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY, maxRetries: 0 });
});

afterAll(async () => {
  await stack?.stop();
  await fake?.close();
});

/** Streams a chat turn with the SDK's helper; returns its final completion, its chunks and its stored run. */
async function streamTurn(model: string, content: OpenAI.ChatCompletionUserMessageParam["content"]) {
  const { data, response } = await client.chat.completions
    .create({ model, messages: [{ role: "user", content }], stream: true })
    .withResponse();
  const stream = ChatCompletionStream.fromReadableStream(data.toReadableStream());
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  stream.on("chunk", (chunk) => chunks.push(chunk));
  const final = await stream.finalChatCompletion();
  const runId = response.headers.get("x-run-id");
  expect(runId).toMatch(/^run_/);
  const run = (await (await http(`/v1/runs/${runId}`)).json()) as {
    status: string;
    output: { content: string | null } | null;
  };
  return { final, chunks, run };
}

describe("streams tell the truth", () => {
  it("never streams the agent's own tool calls: the SDK's final completion is the answer, with stop", async () => {
    const { final, chunks, run } = await streamTurn("assistant", "add 2 and 3");
    expect(chunks.some((chunk) => chunk.choices[0]?.delta.tool_calls)).toBe(false);
    const choice = final.choices[0]!;
    expect(choice.message.tool_calls ?? []).toEqual([]);
    expect(choice.finish_reason).toBe("stop");
    expect(choice.message.content).toBe("The total is 5.");
    expect(run.status).toBe("completed");
    expect(run.output?.content).toBe(choice.message.content);
  });

  it("streams text written before a tool call as part of the answer, and stores it so", async () => {
    const { final, run } = await streamTurn("assistant", "add 2 and 3, say so first");
    expect(final.choices[0]?.message.content).toBe("Let me add those.\n\nThe total is 5.");
    expect(run.output?.content).toBe(final.choices[0]?.message.content);
    // the answer without streaming is the final step's text alone
    const plain = await client.chat.completions.create({
      model: "assistant",
      messages: [{ role: "user", content: "add 2 and 3, say so first" }],
    });
    expect(plain.choices[0]?.message.content).toBe("The total is 5.");
  });

  it("streams only the checked answer of an agent with structured output (after its repair)", async () => {
    const { final, chunks, run } = await streamTurn("structured", "total as json");
    const streamed = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
    expect(streamed).not.toMatch(/five/);
    expect(final.choices[0]?.message.content).toBe('{"total": 5}');
    expect(final.choices[0]?.finish_reason).toBe("stop");
    expect(run.output?.content).toBe('{"total": 5}');
  });

  it("redacts PII in the answer before it is streamed, and in every text part of the input", async () => {
    const { final, chunks, run } = await streamTurn("private", [
      { type: "text", text: "contact me at bob@example.org" },
      { type: "text", text: "or at carol@example.net" },
    ]);
    const streamed = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
    expect(streamed).toBe("Write to [email] any time.");
    expect(final.choices[0]?.message.content).toBe("Write to [email] any time.");
    expect(run.output?.content).toBe("Write to [email] any time.");
    const seen = JSON.stringify(fake.chatRequests().at(-1)?.messages);
    expect(seen).not.toMatch(/example\.(org|net)/);
    expect(seen).toMatch(/\[email\]/);
  });

  it("answers a stream that fails before any output with the status and body a plain request gets", async () => {
    fake.setFault({ kind: "status", status: 400, body: { error: { message: "bad request upstream" } } });
    try {
      const plain = await http("/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ messages: [{ role: "user", content: "hello" }] }),
      });
      const streamed = await http("/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ messages: [{ role: "user", content: "hello" }], stream: true }),
      });
      expect(plain.status).toBeGreaterThanOrEqual(400);
      expect(streamed.status).toBe(plain.status);
      expect(streamed.headers.get("content-type")).toMatch(/application\/json/);
      const body = (await streamed.json()) as { error: { type: string; code: string; message: string } };
      const plainBody = (await plain.json()) as { error: { type: string; code: string } };
      expect(body.error.type).toBe(plainBody.error.type);
      expect(body.error.code).toBe(plainBody.error.code);
      const thrown = await client.chat.completions
        .create({ model: "assistant", messages: [{ role: "user", content: "hello" }], stream: true })
        .catch((error: unknown) => error);
      expect(thrown).toBeInstanceOf(OpenAI.APIError);
      expect((thrown as InstanceType<typeof OpenAI.APIError>).status).toBe(plain.status);
    } finally {
      fake.setFault(null);
    }
    const invalid = await http("/v1/chat/completions", {
      method: "POST",
      body: JSON.stringify({ messages: [{ role: "wizard", content: "hi" }], stream: true }),
    });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: { param: string } }).error.param).toMatch(/^messages/);
  });

  it("resumes run event streams after a cut without losing an event, many at once", async () => {
    const ids = (body: string) => [...body.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    const one = async (round: number, index: number) => {
      const created = await http("/v1/runs", {
        method: "POST",
        body: JSON.stringify({ input: `stream me ${round}.${index}` }),
      });
      expect(created.status).toBe(202);
      const { id } = (await created.json()) as { id: string };
      const controller = new AbortController();
      const first = await http(`/v1/runs/${id}/events`, { signal: controller.signal });
      const reader = first.body!.getReader();
      let text = "";
      // cut after a varying number of events, some before the run ends and some after
      const cutAfter = 1 + (index % 4);
      while ((text.match(/\n\n/g) ?? []).length < cutAfter) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += new TextDecoder().decode(chunk.value);
      }
      controller.abort();
      const seen = ids(text.slice(0, text.lastIndexOf("\n\n")));
      expect(seen.length, text).toBeGreaterThan(0);
      const resumed = await (
        await http(`/v1/runs/${id}/events`, { headers: { "last-event-id": String(seen.at(-1)) } })
      ).text();
      const full = await (await http(`/v1/runs/${id}/events`)).text();
      expect([...seen, ...ids(resumed)]).toEqual(ids(full));
      expect(full).toMatch(/event: run-finished/);
      // resuming after the last event of a finished run ends at once with nothing more
      expect(text.includes("event: run-finished") ? resumed : "").toBe("");
      if (!text.includes("event: run-finished")) expect(resumed).toMatch(/event: run-finished/);
    };
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 8 }, (_, index) => one(round, index)));
    }
  });
});
