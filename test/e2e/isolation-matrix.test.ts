/**
 * Isolation matrix: two tenants (`default`, `globex`) and two users of the first (ann, bob) try to
 * read or infer each other's runs, run events, threads, memories, usage, model cache hits and tool
 * results through every HTTP endpoint; every attempt is refused or comes back empty. Alongside:
 * tool policies hold when a call runs (a refused call is a tool error the model reads, the run
 * still answers), channel policies included.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bus } from "@agent-runtime/bus";
import { createTestBus } from "@agent-runtime/bus/testing";
import { Endpoints } from "@agent-runtime/contracts";
import { KeyStore } from "@agent-runtime/ingress";
import { createPool } from "@agent-runtime/stores";
import { contentText, type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { commandModel } from "../support/command-model.js";
import { DATABASE_URL } from "../support/isolation.js";
import { type Stack, startStack } from "../support/stack.js";

const KEY_A = "sk-isolation-tenant-default";
let keyB: string;
let keyKiosk: string;
let fake: FakeOpenAI;
let stack: Stack;
let pool: pg.Pool;
let bus: Bus;
let counterServer: Server;
let counterCalls = 0;

type Json = Record<string, unknown>;

const http = (key: string, path: string, init: RequestInit = {}) => {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${key}`);
  if (init.body) headers.set("content-type", "application/json");
  return fetch(`${stack.url}${path}`, { ...init, headers });
};

/** A run to its end (`wait`), as `user` of the key's tenant. */
async function run(key: string, input: string, options: { agent?: string; user?: string } = {}) {
  const response = await http(key, "/v1/runs", {
    method: "POST",
    body: JSON.stringify({
      agent: options.agent ?? "assistant",
      input,
      wait: true,
      ...(options.user ? { user: options.user } : {}),
    }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as Json & { id: string; status: string; thread_id: string };
  expect(body.status).toBe("completed");
  return { ...body, text: contentText((body.output as { content?: unknown } | null)?.content) };
}

/** A chat turn; `temperature: 0` makes the model call cacheable. */
async function chat(
  key: string,
  content: string,
  options: { agent?: string; user?: string; temperature?: number; threadId?: string } = {},
) {
  const response = await http(key, "/v1/chat/completions", {
    method: "POST",
    headers: options.threadId ? { "x-thread-id": options.threadId } : {},
    body: JSON.stringify({
      model: options.agent ?? "assistant",
      messages: [{ role: "user", content }],
      ...(options.user ? { user: options.user } : {}),
      ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
    }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { choices: { message: { content: string } }[] };
  return body.choices[0]?.message.content ?? "";
}

async function expectStatus(response: Response, status: number) {
  const text = await response.text();
  expect({ status: response.status, body: text.slice(0, 300) }).toMatchObject({ status });
  return text;
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  counterServer = createServer((_request, response) => {
    counterCalls++;
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ call: counterCalls }));
  });
  await new Promise<void>((resolve) => counterServer.listen(0, "127.0.0.1", resolve));
  const counterUrl = `http://127.0.0.1:${(counterServer.address() as AddressInfo).port}/count`;

  fake = await startFakeOpenAI();
  fake.setHandler(commandModel(1500));

  const configPath = join(mkdtempSync(join(tmpdir(), "isolation-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      agents: {
        assistant: {
          tools: ["calculator", "current_time", "memory_search", "counter"],
          memory: { retrieval: true },
        },
        plain: { tools: [] },
        clock: { tools: ["current_time"] },
        librarian: { tools: ["memory_search"], memory: { scope: "tenant" } },
        private: { tools: [], tenants: ["default"] },
      },
      tools: {
        webhooks: {
          counter: {
            description: "counts its calls",
            url: counterUrl,
            method: "GET",
            sideEffects: false,
            cacheTtlSeconds: 300,
            allowPrivateNetwork: true,
            parameters: { type: "object", properties: { q: { type: "string" } } },
          },
        },
        policies: [
          { tenant: "kiosk", allow: ["calculator"] },
          { agent: "clock", channel: "runs", deny: ["current_time"] },
        ],
      },
    }),
  );
  stack = await startStack({
    bootstrapApiKey: KEY_A,
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: configPath },
  });
  pool = await createPool({ url: DATABASE_URL, schema: stack.isolation.schema, max: 2 });
  const keys = await KeyStore.open(pool, 0);
  keyB = (await keys.create("globex", ["chat", "runs", "events"], "globex")).key;
  keyKiosk = (await keys.create("kiosk", ["chat", "runs"], "kiosk")).key;
  bus = await createTestBus({ prefix: stack.isolation.natsPrefix });
}, 60_000);

afterAll(async () => {
  await bus?.close();
  await pool?.end();
  await stack?.stop();
  await fake?.close();
  counterServer?.close();
});

describe("isolation matrix", () => {
  it("runs, run events and threads of another tenant are not found, not listed, not changed", async () => {
    const marker = `MARKER-${randomUUID()}`;
    const mine = await run(KEY_A, `remember ${marker}`, { user: "ann" });
    expect(mine.text).toContain(marker);
    const threadId = mine.thread_id;

    // the owner sees them
    await expectStatus(await http(KEY_A, `/v1/runs/${mine.id}`), 200);
    await expectStatus(await http(KEY_A, `/v1/threads/${threadId}/messages`), 200);

    // the other tenant: every endpoint answers as if they did not exist
    await expectStatus(await http(keyB, `/v1/runs/${mine.id}`), 404);
    await expectStatus(await http(keyB, `/v1/runs/${mine.id}/events`), 404);
    await expectStatus(await http(keyB, `/v1/runs/${mine.id}/events?last_event_id=0`), 404);
    await expectStatus(await http(keyB, `/v1/runs/${mine.id}/cancel`, { method: "POST" }), 404);
    await expectStatus(await http(keyB, `/v1/threads/${threadId}/messages`), 404);
    await expectStatus(await http(keyB, `/v1/threads/${threadId}`, { method: "DELETE" }), 404);
    const listed = await expectStatus(await http(keyB, "/v1/runs?limit=100"), 200);
    expect(listed).not.toContain(mine.id);
    expect(listed).not.toContain(marker);
    const byThread = await expectStatus(await http(keyB, `/v1/runs?thread_id=${threadId}`), 200);
    expect(JSON.parse(byThread)).toMatchObject({ data: [] });

    // continuing the other tenant's thread id starts an empty thread of one's own
    const intruder = await chat(keyB, "what did we talk about?", { threadId });
    expect(intruder).not.toContain(marker);
    const stillMine = await expectStatus(await http(KEY_A, `/v1/threads/${threadId}/messages`), 200);
    expect(stillMine).toContain(marker);
    expect(stillMine).not.toContain("what did we talk about?");
    const afterDeleteAttempt = await expectStatus(await http(KEY_A, `/v1/runs/${mine.id}`), 200);
    expect(afterDeleteAttempt).toContain(marker);
  });

  it("an agent of another tenant is not listed and cannot be run or chatted with", async () => {
    expect(await expectStatus(await http(KEY_A, "/v1/models"), 200)).toContain('"private"');
    expect(await expectStatus(await http(keyB, "/v1/models"), 200)).not.toContain('"private"');
    const runBody = JSON.stringify({ agent: "private", input: "hello", wait: true });
    await expectStatus(await http(keyB, "/v1/runs", { method: "POST", body: runBody }), 404);
    const chatBody = JSON.stringify({ model: "private", messages: [{ role: "user", content: "hello" }] });
    await expectStatus(await http(keyB, "/v1/chat/completions", { method: "POST", body: chatBody }), 404);
  });

  it("a run of another tenant cannot be cancelled while it runs", async () => {
    const started = await http(KEY_A, "/v1/runs", {
      method: "POST",
      body: JSON.stringify({ agent: "plain", input: "SLOW answer please" }),
    });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    await waitFor(async () => {
      const response = await http(KEY_A, `/v1/runs/${id}`);
      if (response.status !== 200) return undefined;
      const body = (await response.json()) as { status: string };
      return body.status === "running" ? true : undefined;
    });
    await expectStatus(await http(keyB, `/v1/runs/${id}/cancel`, { method: "POST" }), 404);
    const finished = await waitFor(async () => {
      const body = (await (await http(KEY_A, `/v1/runs/${id}`)).json()) as { status: string };
      return ["completed", "failed", "cancelled"].includes(body.status) ? body.status : undefined;
    });
    expect(finished).toBe("completed");
  });

  it("memories reach their own user only; tenant-wide knowledge only where configured; never another tenant", async () => {
    const meta = (tenant: string) => ({
      v: 1 as const,
      tenant,
      requestId: randomUUID(),
      deadline: Date.now() + 10_000,
    });
    await bus.request(Endpoints.memoryRemember, {
      meta: meta("default"),
      documentId: "ann-locker",
      userId: "ann",
      kind: "fact",
      text: "Ann's locker code is 4711.",
    });
    await bus.request(Endpoints.memoryRemember, {
      meta: meta("default"),
      documentId: "office-hours",
      kind: "fact",
      text: "The office opens at nine o'clock.",
    });
    await bus.request(Endpoints.memoryRemember, {
      meta: meta("globex"),
      documentId: "globex-vault",
      kind: "fact",
      text: "The globex vault locker code is 9999.",
    });
    // indexed (embedded) in the background
    await waitFor(async () => {
      const result = await pool.query("SELECT count(*)::int AS n FROM chunks WHERE vector IS NULL");
      return result.rows[0].n === 0 ? true : undefined;
    });

    // retrieval into the prompt (the model echoes what it was given)
    const ann = await chat(KEY_A, "what is my locker code?", { user: "ann" });
    expect(ann).toContain("4711");
    const bob = await chat(KEY_A, "what is my locker code?", { user: "bob" });
    expect(bob).not.toContain("4711");
    const nobody = await chat(KEY_A, "what is the locker code?");
    expect(nobody).not.toContain("4711");
    expect(await chat(KEY_A, "when does the office open?", { user: "bob" })).toContain("nine");
    const carol = await chat(keyB, "what is the locker code?", { user: "carol" });
    expect(carol).not.toContain("4711");
    expect(carol).not.toContain("nine");
    expect(ann).not.toContain("9999");

    // the memory_search tool: scoped to the user, unless the agent is configured tenant-wide
    const search = 'CALL memory_search {"query":"locker code"}';
    expect((await run(KEY_A, search, { user: "ann" })).text).toContain("4711");
    const bobSearch = await run(KEY_A, search, { user: "bob" });
    expect(bobSearch.text).toMatch(/^tool said: /);
    expect(bobSearch.text).not.toContain("4711");
    expect((await run(KEY_A, search, { user: "bob", agent: "librarian" })).text).toContain("4711");
    const carolWide = await run(keyB, search, { user: "carol", agent: "librarian" });
    expect(carolWide.text).toContain("9999");
    expect(carolWide.text).not.toContain("4711");
  });

  it("a cached model answer never reaches another tenant or another user", async () => {
    const prompt = `cache probe ${randomUUID()}`;
    const calls = () => fake.chatRequests().filter((request) => JSON.stringify(request).includes(prompt));
    await chat(KEY_A, prompt, { agent: "plain", user: "ann", temperature: 0 });
    expect(calls()).toHaveLength(1);
    await chat(KEY_A, prompt, { agent: "plain", user: "bob", temperature: 0 });
    await chat(keyB, prompt, { agent: "plain", user: "ann", temperature: 0 });
    await chat(keyB, prompt, { agent: "plain", temperature: 0 });
    // each a provider call of its own: nobody got an instant, zero-cost answer revealing the prompt
    expect(calls()).toHaveLength(4);
    // the same user again: served from the cache
    await chat(KEY_A, prompt, { agent: "plain", user: "ann", temperature: 0 });
    expect(calls()).toHaveLength(4);
  });

  it("a personal tool's cached result never reaches another user or tenant", async () => {
    const call = `CALL counter {"q":"${randomUUID()}"}`;
    const first = await run(KEY_A, call, { user: "ann" });
    const bob = await run(KEY_A, call, { user: "bob" });
    const carol = await run(keyB, call, { user: "ann" });
    const again = await run(KEY_A, call, { user: "ann" });
    const seen = [first, bob, carol, again].map((result) => /"call":(\d+)/.exec(result.text)?.[1]);
    expect(new Set(seen.slice(0, 3)).size).toBe(3);
    // the same user and tenant: cached
    expect(seen[3]).toBe(seen[0]);
  });

  it("usage of another tenant is not shown and cannot be asked for", async () => {
    await run(KEY_A, 'CALL calculator {"expression":"6*7"}', { user: "ann" });
    await waitFor(async () => {
      const stats = await (await http(KEY_A, "/v1/stats")).text();
      return stats.includes("calculator") ? true : undefined;
    });
    const theirs = await expectStatus(await http(keyB, "/v1/stats"), 200);
    expect(theirs).not.toContain("calculator");
    await expectStatus(await http(keyB, "/v1/stats?tenant=default"), 403);
  });

  it("tool policies hold when a call runs: a refused call is a tool error the model reads", async () => {
    // the kiosk tenant may use the calculator only; the model calls the clock anyway
    const refused = await run(keyKiosk, "CALL current_time {}");
    expect(refused.text).toMatch(/^tool said: error: current_time is not allowed here/);
    expect((await run(keyKiosk, 'CALL calculator {"expression":"1+1"}')).text).toContain("2");
    // not an agent's tool at all: refused too
    const notMine = await run(KEY_A, "CALL current_time {}", { agent: "librarian" });
    expect(notMine.text).toMatch(/^tool said: error: current_time is not one of your tools/);

    // channel policy: the clock agent may read the clock in chat, not through /v1/runs
    expect(await chat(KEY_A, "CALL current_time {}", { agent: "clock" })).not.toMatch(/error/);
    const viaRuns = await run(KEY_A, "CALL current_time {}", { agent: "clock" });
    expect(viaRuns.text).toMatch(/^tool said: error: current_time is not allowed here/);
    // the run's events say so too
    const events = await expectStatus(await http(KEY_A, `/v1/runs/${viaRuns.id}/events`), 200);
    expect(events).toMatch(/"type":"tool-result"[^\n]*"status":"forbidden"/);
  });
});
