import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type Stack, startStack } from "../support/stack.js";

const KEY = "sk-redis-down-tests";
let fake: FakeOpenAI;
let stack: Stack;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler((body) => {
    const result = body.messages.find((message) => message.role === "tool");
    if (!result) return { toolCalls: [{ name: "calculator", arguments: { expression: "6*7" } }] };
    return { content: `answer: ${String(result.content)}` };
  });
  const configPath = join(mkdtempSync(join(tmpdir(), "redis-down-")), "config.yaml");
  writeFileSync(configPath, stringify({ limits: { tenants: { default: { requestsPerMinute: 3 } } } }));
  // nothing listens on port 1: every Redis command fails at once
  stack = await startStack({
    bootstrapApiKey: KEY,
    openaiBaseUrl: fake.url,
    env: { REDIS_URL: "redis://127.0.0.1:1", AGENT_CONFIG: configPath },
  });
});

afterAll(async () => {
  await stack?.stop();
  await fake?.close();
});

describe("with Redis down", () => {
  it("still answers chat turns with tools and memory, and keeps limits per replica", async () => {
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const first = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "six times seven?" }] })
      .withResponse();
    expect(first.data.choices[0]?.message.content).toContain('"result":42');
    const thread = first.response.headers.get("x-thread-id")!;
    const second = await client.chat.completions.create(
      { model: "assistant", messages: [{ role: "user", content: "again" }] },
      { headers: { "x-thread-id": thread } },
    );
    expect(second.choices[0]?.message.content).toContain("answer:");
    const messages = await fetch(`${stack.url}/v1/threads/${thread}/messages`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    // turn one: user, tool call, tool result, answer; turn two: user, answer
    expect(((await messages.json()) as { data: unknown[] }).data).toHaveLength(6);
    await client.chat.completions.create({
      model: "assistant",
      messages: [{ role: "user", content: "third" }],
    });
    const limited = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "fourth" }] })
      .catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    expect((await fetch(`${stack.url}/readyz`)).status).toBe(200);
  });
});
