/**
 * The `remember` built-in: an agent given it stores what the user asked it to keep in that user's
 * long-term memory, where `GET /v1/memories` lists it and later turns find it; never for another
 * user, never in the tenant's shared memories, and once per call.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { contentText, type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type Stack, startStack } from "../support/stack.js";

const KEY = "sk-remember-tool";
let fake: FakeOpenAI;
let stack: Stack;
const toolResults: string[] = [];

const http = (path: string, init: RequestInit = {}) =>
  fetch(`${stack.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...init.headers },
  });

async function chat(user: string | undefined, content: string) {
  const response = await http("/v1/chat/completions", {
    method: "POST",
    body: JSON.stringify({
      model: "companion",
      ...(user ? { user } : {}),
      messages: [{ role: "user", content }],
    }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { choices: { message: { content: string } }[] };
}

async function memoriesOf(user: string) {
  const response = await http(`/v1/memories?user=${user}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: { text: string; kind: string }[] }).data;
}

beforeAll(async () => {
  fake = await startFakeOpenAI();
  // the model keeps what follows "REMEMBER:" and then answers with the tool's result
  fake.setHandler((body) => {
    const last = body.messages.at(-1);
    if (last?.role === "tool") {
      toolResults.push(contentText(last.content));
      return { content: `noted: ${contentText(last.content)}` };
    }
    const asked = /REMEMBER: (.+)$/.exec(contentText(last?.content ?? ""))?.[1];
    if (asked) return { toolCalls: [{ name: "remember", arguments: { text: asked } }] };
    return { content: "ok" };
  });
  const configPath = join(mkdtempSync(join(tmpdir(), "remember-")), "config.yaml");
  writeFileSync(configPath, stringify({ agents: { companion: { tools: ["remember", "memory_search"] } } }));
  stack = await startStack({
    bootstrapApiKey: KEY,
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: configPath },
  });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  await fake?.close();
});

describe("the remember tool", () => {
  it("stores a fact in the caller's own memory, listed and searchable, once", async () => {
    const answer = await chat("ann", "REMEMBER: ann takes her tea with oat milk");
    expect(answer.choices[0]?.message.content).toMatch(/^noted: \{"id":"mem_[0-9a-f]+","remembered":true\}$/);
    const mine = await memoriesOf("ann");
    expect(mine.map((memory) => memory.text)).toEqual(["ann takes her tea with oat milk"]);
    expect(mine[0]?.kind).toBe("fact");
    const found = await http(`/v1/memories/search?q=${encodeURIComponent("tea with oat milk")}&user=ann`);
    expect(JSON.stringify(await found.json())).toContain("oat milk");
    // nobody else's, and not the tenant's shared memories
    expect(await memoriesOf("bob")).toEqual([]);
    const shared = await http("/v1/memories");
    expect(JSON.stringify(await shared.json())).not.toContain("oat milk");
  });

  it("refuses without a user, as a result the model reads, and stores nothing", async () => {
    toolResults.length = 0;
    await chat(undefined, "REMEMBER: an anonymous secret");
    expect(toolResults).toHaveLength(1);
    expect(toolResults[0]).toMatch(/^error: .*no user to remember this for/);
    const shared = await http("/v1/memories");
    expect(JSON.stringify(await shared.json())).not.toContain("anonymous secret");
  });
});
