/**
 * Forgetting, proven by grepping every store: real turns through the whole stack (plain, cached,
 * tool turns with a side-effecting and a cached webhook, a streamed run, long-term memories that
 * are indexed and searched) carry a unique marker; after `DELETE /v1/threads/:id` and
 * `DELETE /v1/users/:id` the marker is in no row of any table of the stack's Postgres schema, no
 * key or value in Redis under its prefix, no message of any of its JetStream streams, and no
 * answer of the HTTP API (runs, run lists, run events, thread messages). What another thread of
 * the same user said stays, and the grep finds it (so the grep can find what it looks for).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bus } from "@agent-runtime/bus";
import { createTestBus } from "@agent-runtime/bus/testing";
import { createPool } from "@agent-runtime/stores";
import { contentText, type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { Redis } from "ioredis";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { commandModel } from "../support/command-model.js";
import { DATABASE_URL, REDIS_URL } from "../support/isolation.js";
import { type Stack, startStack } from "../support/stack.js";

const KEY = "sk-forget-e2e";
let fake: FakeOpenAI;
let stack: Stack;
let pool: pg.Pool;
let redis: Redis;
let bus: Bus;
let webhook: Server;

type Json = Record<string, unknown>;

/** Lower-case letters and digits only: full-text indexes keep it whole (and lower-cased). */
const newMarker = (label: string) => `${label}${randomBytes(8).toString("hex")}`;

const http = (path: string, init: RequestInit = {}) => {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${KEY}`);
  if (init.body) headers.set("content-type", "application/json");
  return fetch(`${stack.url}${path}`, { ...init, headers });
};

async function json(response: Response, status = 200): Promise<Json> {
  const text = await response.text();
  expect({ status: response.status, body: text.slice(0, 400) }).toMatchObject({ status });
  return JSON.parse(text) as Json;
}

/** A run to its end (`wait`) in a thread, as a user. */
async function run(input: string, threadId: string, user: string, agent = "assistant") {
  const body = await json(
    await http("/v1/runs", {
      method: "POST",
      body: JSON.stringify({ agent, input, thread_id: threadId, user, wait: true }),
    }),
  );
  expect(body.status).toBe("completed");
  return { id: String(body.id), text: contentText((body.output as { content?: unknown } | null)?.content) };
}

/** A run streamed as SSE to its end; returns its id and everything streamed. */
async function streamedRun(input: string, threadId: string, user: string) {
  const response = await http("/v1/runs", {
    method: "POST",
    body: JSON.stringify({ agent: "assistant", input, thread_id: threadId, user, stream: true }),
  });
  expect(response.status).toBe(200);
  const text = await response.text();
  expect(text).toContain("run-finished");
  return { id: response.headers.get("x-run-id") ?? "", text };
}

/** A cacheable chat turn (no tools, temperature 0) in a thread. */
async function cachedChat(content: string, threadId: string, user: string) {
  const response = await http("/v1/chat/completions", {
    method: "POST",
    headers: { "x-thread-id": threadId },
    body: JSON.stringify({ model: "plain", messages: [{ role: "user", content }], user, temperature: 0 }),
  });
  const body = await json(response);
  return (body.choices as { message: { content: string } }[])[0]?.message.content ?? "";
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

/** Every table of the stack's schema: rows (cast to text) holding the marker, as `table: row`. */
async function grepPostgres(marker: string): Promise<string[]> {
  const tables = await pool.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition`,
    [stack.isolation.schema],
  );
  expect(tables.rows.map((row) => row.name)).toEqual(
    expect.arrayContaining(["runs", "run_steps", "messages", "threads", "chunks", "tool_calls"]),
  );
  const found: string[] = [];
  for (const { name } of tables.rows) {
    const rows = await pool.query<{ row: string }>(
      `SELECT t::text AS row FROM "${stack.isolation.schema}"."${name}" t WHERE t::text ILIKE $1`,
      [`%${marker}%`],
    );
    for (const { row } of rows.rows) found.push(`${name}: ${row.slice(0, 300)}`);
  }
  return found;
}

/** Every Redis key under the stack's prefix whose name or value (of any type) holds the marker. */
async function grepRedis(marker: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${stack.isolation.redisPrefix}*`, "COUNT", 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      let value: unknown;
      if (type === "string") value = (await redis.getBuffer(key))?.toString("utf8");
      else if (type === "hash") value = await redis.hgetall(key);
      else if (type === "list") value = await redis.lrange(key, 0, -1);
      else if (type === "set") value = await redis.smembers(key);
      else if (type === "zset") value = await redis.zrange(key, 0, -1, "WITHSCORES");
      else if (type === "stream") value = await redis.xrange(key, "-", "+");
      const text = `${key} ${JSON.stringify(value ?? null)}`;
      if (text.toLowerCase().includes(marker)) found.push(`${type} ${text.slice(0, 300)}`);
    }
  } while (cursor !== "0");
  return found;
}

/** Every message (subject, headers, data) of every JetStream stream of the stack holding the marker. */
async function grepStreams(marker: string): Promise<string[]> {
  const jsm = await bus.jsm();
  const found: string[] = [];
  const names: string[] = [];
  for await (const name of jsm.streams.names())
    if (name.startsWith(`${stack.isolation.natsPrefix}_`)) names.push(name);
  expect(names.length).toBeGreaterThanOrEqual(5);
  for (const name of names) {
    const { state } = await jsm.streams.info(name);
    for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
      const message = await jsm.streams.getMessage(name, { seq }).catch(() => null);
      if (!message) continue;
      const headers = message.header
        ? JSON.stringify([...message.header.keys()].map((key) => message.header.get(key)))
        : "";
      const text = `${message.subject} ${headers} ${message.string()}`;
      if (text.toLowerCase().includes(marker)) found.push(`${name} #${seq}: ${text.slice(0, 300)}`);
    }
  }
  return found;
}

/** The HTTP API's answers about some runs and threads that hold the marker. */
async function grepApi(marker: string, runIds: string[], threadIds: string[]): Promise<string[]> {
  const found: string[] = [];
  const check = async (path: string) => {
    const response = await http(path);
    const text = await response.text();
    if (text.toLowerCase().includes(marker)) found.push(`${path}: ${response.status} ${text.slice(0, 300)}`);
  };
  for (const runId of runIds) {
    await check(`/v1/runs/${runId}`);
    await check(`/v1/runs/${runId}/events`);
  }
  for (const threadId of threadIds) {
    await check(`/v1/runs?thread_id=${threadId}&limit=100`);
    await check(`/v1/threads/${threadId}/messages`);
  }
  await check("/v1/runs?limit=100");
  return found;
}

async function grepEverything(marker: string, runIds: string[], threadIds: string[]) {
  return {
    postgres: await grepPostgres(marker),
    redis: await grepRedis(marker),
    streams: await grepStreams(marker),
    api: await grepApi(marker, runIds, threadIds),
  };
}

const nothingFound = { postgres: [], redis: [], streams: [], api: [] };

/** Waits until memory has stored a thread's turns (they reach it through THREAD_TURNS). */
async function threadStored(threadId: string, messages: number) {
  await waitFor(async () => {
    const response = await http(`/v1/threads/${threadId}/messages?limit=1000`);
    if (response.status !== 200) return undefined;
    const body = (await response.json()) as { data: unknown[] };
    return body.data.length >= messages ? true : undefined;
  });
}

/**
 * A user's turns in a thread, each kind once: a cached chat turn, a plain run, a side-effecting
 * tool (its reply kept as an idempotency record), a cached tool (its result in the tool cache)
 * and a streamed run (its events kept for replay). Every turn carries the marker.
 */
async function talk(marker: string, threadId: string, user: string) {
  const runIds: string[] = [];
  expect(await cachedChat(`please remember ${marker}`, threadId, user)).toContain(marker);
  const plain = await run(`hello, my code word is ${marker}`, threadId, user);
  expect(plain.text).toContain(marker);
  runIds.push(plain.id);
  const echoed = await run(`CALL echo {"text":"${marker}"}`, threadId, user);
  expect(echoed.text).toContain(marker);
  runIds.push(echoed.id);
  const looked = await run(`CALL lookup {"q":"${marker}"}`, threadId, user);
  expect(looked.text).toContain(marker);
  runIds.push(looked.id);
  const streamed = await streamedRun(`stream this back: ${marker}`, threadId, user);
  expect(streamed.text).toContain(marker);
  runIds.push(streamed.id);
  // the chat turn and four runs, each a user message and an answer (tool turns: four messages)
  await threadStored(threadId, 14);
  return runIds;
}

beforeAll(async () => {
  // a webhook that says back what it was sent
  webhook = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    request.on("end", () => {
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ echoed: body || request.url }));
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}`;

  fake = await startFakeOpenAI();
  fake.setHandler(commandModel(4000));

  const configPath = join(mkdtempSync(join(tmpdir(), "forget-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      // a thread is summarised after a few turns, so forgetting is shown to reach the summaries too
      memory: { summarizeAfterTokens: 200, keepRecentTurns: 2 },
      agents: {
        assistant: { tools: ["echo", "lookup", "memory_search"], memory: { retrieval: true } },
        plain: { tools: [] },
      },
      tools: {
        webhooks: {
          echo: {
            description: "says back what it was sent (a side effect: kept under its idempotency key)",
            url: `${url}/echo`,
            sideEffects: true,
            allowPrivateNetwork: true,
            parameters: { type: "object", properties: { text: { type: "string" } } },
          },
          lookup: {
            description: "looks something up (no side effect: its results are cached)",
            url: `${url}/lookup`,
            method: "GET",
            sideEffects: false,
            cacheTtlSeconds: 300,
            allowPrivateNetwork: true,
            parameters: { type: "object", properties: { q: { type: "string" } } },
          },
        },
      },
    }),
  );
  stack = await startStack({
    bootstrapApiKey: KEY,
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: configPath },
  });
  pool = await createPool({ url: DATABASE_URL, schema: stack.isolation.schema, max: 2 });
  redis = new Redis(REDIS_URL);
  bus = await createTestBus({ prefix: stack.isolation.natsPrefix });
}, 60_000);

afterAll(async () => {
  await bus?.close();
  redis?.disconnect();
  await pool?.end();
  await stack?.stop();
  await fake?.close();
  webhook?.close();
});

describe("forgetting", () => {
  it("DELETE /v1/threads/:id leaves the thread's content in no table, key, stream or answer", async () => {
    const marker = newMarker("threadmark");
    const kept = newMarker("keptmark");
    const threadId = `thread-forget-${randomBytes(4).toString("hex")}`;
    const otherThread = `thread-kept-${randomBytes(4).toString("hex")}`;
    const runIds = await talk(marker, threadId, "bob");
    const keptRuns = await talk(kept, otherThread, "bob");
    // the thread has a running summary, and the summary holds the marker
    await waitFor(async () => {
      const summarised = await pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM threads WHERE id = $1 AND strpos(summary, $2) > 0",
        [threadId, marker],
      );
      return summarised.rows[0]!.n > 0 ? true : undefined;
    });

    // before: the grep finds the marker in every kind of store
    const before = await grepEverything(marker, runIds, [threadId]);
    expect(before.postgres.length).toBeGreaterThan(0);
    expect(before.redis.length).toBeGreaterThan(0);
    expect(before.streams.length).toBeGreaterThan(0);
    expect(before.api.length).toBeGreaterThan(0);

    const deleted = await json(await http(`/v1/threads/${threadId}`, { method: "DELETE" }));
    expect(await grepEverything(marker, runIds, [threadId])).toEqual(nothingFound);
    // the chat turn was a run too
    expect(deleted).toMatchObject({ id: threadId, deleted: true, threads: 1, runs: 5 });
    // what stays: the runs, with status and totals but no content, and no thread
    for (const runId of runIds) {
      const record = await json(await http(`/v1/runs/${runId}`));
      expect(record).toMatchObject({ status: "completed", thread_id: null, user_id: null, output: null });
      expect((record.usage as { total_tokens: number }).total_tokens).toBeGreaterThan(0);
    }
    await json(await http(`/v1/threads/${threadId}/messages`), 404);
    await json(await http(`/v1/threads/${threadId}`, { method: "DELETE" }), 404);

    // the same user's other thread is untouched
    const other = await grepEverything(kept, keptRuns, [otherThread]);
    expect(other.postgres.length).toBeGreaterThan(0);
    expect(other.redis.length).toBeGreaterThan(0);
    expect(other.api.length).toBeGreaterThan(0);
    const continued = await run(`and again ${kept}`, otherThread, "bob");
    expect(continued.text).toContain(`hello, my code word is ${kept}`);
  });

  it("DELETE /v1/users/:id leaves nothing of the user: threads, runs, memories, documents, caches", async () => {
    const marker = newMarker("usermark");
    const user = `user-${randomBytes(4).toString("hex")}`;
    const threads = [
      `thread-a-${randomBytes(4).toString("hex")}`,
      `thread-b-${randomBytes(4).toString("hex")}`,
    ];
    const keysBefore = new Set(await embeddingKeys());

    // long-term memory: a fact and a document, indexed (embedded), searched, retrieved into a turn
    await json(
      await http("/v1/memories", {
        method: "POST",
        body: JSON.stringify({ user, kind: "fact", text: `The user's favourite word is ${marker}.` }),
      }),
      201,
    );
    await json(
      await http("/v1/memories", {
        method: "POST",
        body: JSON.stringify({
          user,
          kind: "document",
          text: `Notes for the trip.\n\n${"Pack light and early. ".repeat(30)}\n\nThe locker code is ${marker}.`,
        }),
      }),
      201,
    );
    await waitFor(async () => {
      const result = await pool.query("SELECT count(*)::int AS n FROM chunks WHERE vector IS NULL");
      return result.rows[0].n === 0 ? true : undefined;
    });
    const search = await json(
      await http(`/v1/memories/search?q=${encodeURIComponent("favourite word")}&user=${user}`),
    );
    expect(JSON.stringify(search)).toContain(marker);

    const runIds = [...(await talk(marker, threads[0]!, user)), ...(await talk(marker, threads[1]!, user))];
    const recalled = await run("what is my favourite word?", threads[0]!, user);
    expect(recalled.text).toContain(marker);
    const searched = await run('CALL memory_search {"query":"locker code"}', threads[1]!, user);
    expect(searched.text).toContain(marker);
    runIds.push(recalled.id, searched.id);
    expect((await embeddingKeys()).length).toBeGreaterThan(keysBefore.size);

    const before = await grepEverything(marker, runIds, threads);
    expect(before.postgres.length).toBeGreaterThan(0);
    expect(before.redis.length).toBeGreaterThan(0);
    expect(before.streams.length).toBeGreaterThan(0);

    // the user's usage is in the per-user totals and the dashboard's rollups, and has settled
    // (summaries finish in the background), before it is forgotten: usage recorded after a forget
    // is written under the user's id (forgetting again renames it)
    let settled = "";
    await waitFor(async () => {
      const daily = await pool.query<{ tokens: string }>(
        "SELECT coalesce(sum(tokens), 0)::text AS tokens FROM usage_user_daily WHERE user_id = $1",
        [user],
      );
      const rollups = await pool.query<{ calls: string }>(
        "SELECT coalesce(sum(calls), 0)::text AS calls FROM rollup_minute WHERE name = tenant || '/' || $1",
        [user],
      );
      const now = `${daily.rows[0]?.tokens}/${rollups.rows[0]?.calls}`;
      const same = now === settled && Number(daily.rows[0]?.tokens) > 0 && Number(rollups.rows[0]?.calls) > 0;
      settled = now;
      if (!same) await new Promise((resolve) => setTimeout(resolve, 1500));
      return same ? true : undefined;
    }, 30_000);
    const deleted = await json(await http(`/v1/users/${user}`, { method: "DELETE" }));
    expect(await grepEverything(marker, runIds, threads)).toEqual(nothingFound);
    // what is kept (usage totals, the rollups) no longer names the user, and still counts
    expect(await grepPostgres(user)).toEqual([]);
    const kept = await pool.query<{ tokens: string }>(
      "SELECT sum(tokens)::text AS tokens FROM usage_user_daily WHERE user_id LIKE 'forgotten-%'",
    );
    expect(Number(kept.rows[0]?.tokens ?? 0)).toBeGreaterThan(0);
    expect(deleted).toMatchObject({ id: user, object: "user", deleted: true, threads: 2, documents: 2 });
    // and each thread's chat turn
    expect(deleted.runs).toBe(runIds.length + 2);
    // the embeddings made of the user's texts and for the user's searches are gone too
    expect((await embeddingKeys()).filter((key) => !keysBefore.has(key))).toEqual([]);
    const again = await json(
      await http(`/v1/memories/search?q=${encodeURIComponent("favourite word")}&user=${user}`),
    );
    expect(again).toMatchObject({ data: [] });
    await json(await http(`/v1/users/${user}`, { method: "DELETE" }), 404);
  });

  it("forgets a thread while one of its runs is still going: the run is cancelled and leaves nothing", async () => {
    const marker = newMarker("runningmark");
    const threadId = `thread-going-${randomBytes(4).toString("hex")}`;
    const first = await run(`remember ${marker}`, threadId, "dan");
    await threadStored(threadId, 2);
    const going = http("/v1/runs", {
      method: "POST",
      body: JSON.stringify({ input: `SLOW ${marker}`, thread_id: threadId, user: "dan", stream: true }),
    });
    const runningId = await waitFor(async () => {
      const list = (await json(await http(`/v1/runs?thread_id=${threadId}&status=running`))) as {
        data: { id: string }[];
      };
      return list.data[0]?.id;
    });

    const deleted = await json(await http(`/v1/threads/${threadId}`, { method: "DELETE" }));
    expect(deleted).toMatchObject({ runs: 2, cancelled: 1 });
    // its client hears the end at once, with no answer
    const streamed = await (await going).text();
    expect(streamed).toContain("run-finished");
    expect(streamed).toContain("cancelled");
    expect(await json(await http(`/v1/runs/${runningId}`))).toMatchObject({
      status: "cancelled",
      output: null,
    });
    // whatever the cancelled worker was doing has settled by now
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await grepEverything(marker, [first.id, runningId], [threadId])).toEqual(nothingFound);
  });

  it("refuses a user id or a thread filter that cannot be stored, naming the field", async () => {
    const badUser = await json(
      await http(`/v1/users/${encodeURIComponent("ann\u0000")}`, { method: "DELETE" }),
      400,
    );
    expect(JSON.stringify(badUser)).toContain('"id"');
    const badFilter = await json(await http(`/v1/runs?thread_id=${encodeURIComponent("thread\u0000")}`), 400);
    expect(badFilter).toMatchObject({ error: { type: "invalid_request_error" } });
    expect(JSON.stringify(badFilter)).toContain("thread_id");
  });
});

async function embeddingKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(
      cursor,
      "MATCH",
      `${stack.isolation.redisPrefix}emb:*`,
      "COUNT",
      1000,
    );
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys;
}
