import type { Bus } from "@agent-runtime/bus";
import { createTestBus, uniquePrefix } from "@agent-runtime/bus/testing";
import { type ChatMessage, Endpoints, type StoredMessage } from "@agent-runtime/contracts";
import { loadConfig as loadProxyConfig, startModelProxy } from "@agent-runtime/model-proxy";
import { createLogger } from "@agent-runtime/telemetry";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { type RunningMemory, startMemory } from "./service.js";
import { countText } from "./tokens.js";

const prefix = uniquePrefix("mem");
const schema = prefix.toLowerCase();
const redisPrefix = `${prefix}:`;
let fake: FakeOpenAI;
let memory: RunningMemory;
let proxy: { stop(): Promise<void> };
let client: Bus;
let db: pg.Client;
let redis: Redis;
let summarizeFailures = 0;

const meta = (tenant = "acme") => ({
  v: 1 as const,
  tenant,
  requestId: `r-${Math.random()}`,
  deadline: Date.now() + 10_000,
});
const say = (role: "user" | "assistant", content: string): ChatMessage => ({ role, content }) as ChatMessage;

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function deleteRedisKeys(): Promise<number> {
  let removed = 0;
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) removed += await redis.del(...keys);
  } while (cursor !== "0");
  return removed;
}

beforeAll(async () => {
  fake = await startFakeOpenAI({
    synonyms: [
      ["car", "automobile", "vehicle"],
      ["doctor", "physician"],
    ],
  });
  fake.setHandler((body) => {
    const system = String(body.messages[0]?.content ?? "");
    if (system.includes("running summary")) {
      if (summarizeFailures > 0) {
        summarizeFailures--;
        return { fault: { kind: "status", status: 500 } };
      }
      const text = String(body.messages[1]?.content ?? "");
      const numbers = text.match(/turn \d+/g) ?? [];
      return { content: `SUMMARY covering ${numbers.length} lines, last ${numbers.at(-1) ?? "none"}` };
    }
    return { content: "ok" };
  });
  const env = {
    NATS_PREFIX: prefix,
    DATABASE_SCHEMA: schema,
    REDIS_PREFIX: redisPrefix,
    OPS_PORT: "0",
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "k",
    MODEL_EMBED: "fake-embed",
    RETRY_BASE_MS: "10",
  };
  const logger = createLogger({ service: "test", level: "silent" });
  proxy = await startModelProxy(loadProxyConfig(env), { logger });
  memory = await startMemory(
    {
      ...loadConfig(env),
      memory: { ...loadConfig(env).memory, summarizeAfterTokens: 400, keepRecentTurns: 4 },
    },
    { logger },
  );
  client = await createTestBus({ prefix });
  db = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await db.connect();
  redis = new Redis("redis://127.0.0.1:6379");
});

afterAll(async () => {
  await client?.close();
  await memory?.stop();
  await proxy?.stop();
  await fake?.close();
  await db?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db?.end();
  await deleteRedisKeys().catch(() => 0);
  redis?.disconnect();
});

function turns(threadRun: string, from: number, count: number): StoredMessage[] {
  return Array.from({ length: count }, (_, index) => {
    const n = from + index;
    return {
      id: `${threadRun}:${n}`,
      message: say(
        n % 2 === 0 ? "user" : "assistant",
        `turn ${n} of ${threadRun}: ${"lorem ipsum dolor sit amet ".repeat(3)}`,
      ),
    };
  });
}

describe("memory", () => {
  it("appends idempotently by message id", async () => {
    const first = await client.request(Endpoints.memoryAppend, {
      meta: meta(),
      threadId: "t-idem",
      messages: turns("a", 0, 4),
    });
    const again = await client.request(Endpoints.memoryAppend, {
      meta: meta(),
      threadId: "t-idem",
      messages: turns("a", 0, 4),
    });
    expect(first).toEqual({ appended: 4, skipped: 0 });
    expect(again).toEqual({ appended: 0, skipped: 4 });
    const listed = await client.request(Endpoints.memoryMessages, {
      meta: meta(),
      threadId: "t-idem",
      limit: 100,
    });
    expect(listed.messages.map((message) => message.id)).toEqual(["a:0", "a:1", "a:2", "a:3"]);
  });

  it("summarises a long thread off the critical path and keeps contexts in budget with the newest turns", async () => {
    for (let batch = 0; batch < 6; batch++) {
      await client.request(Endpoints.memoryAppend, {
        meta: meta(),
        threadId: "t-long",
        messages: turns("long", batch * 10, 10),
      });
    }
    const summary = await waitFor(async () => {
      const row = await db.query(
        `SELECT summary FROM "${schema}".threads WHERE tenant = 'acme' AND id = 't-long'`,
      );
      return row.rows[0]?.summary ? (row.rows[0].summary as string) : undefined;
    });
    expect(summary).toMatch(/^SUMMARY covering/);
    const budget = 600;
    const context = await client.request(Endpoints.memoryContext, {
      meta: meta(),
      threadId: "t-long",
      agent: "assistant",
      systemPrompt: "You are terse.",
      input: [say("user", "what did we discuss?")],
      budgetTokens: budget,
    });
    expect(context.totalTokens).toBeLessThanOrEqual(budget);
    expect(context.sections.summary.items).toBe(1);
    const texts = context.messages.map((message) => String(message.content));
    expect(texts[0]).toBe("You are terse.");
    expect(texts[1]).toMatch(/Summary of the earlier conversation/);
    expect(texts.at(-1)).toBe("what did we discuss?");
    expect(texts.at(-2)).toMatch(/^turn 59 /); // newest stored turn kept
    const kept = texts
      .filter((text) => text.startsWith("turn "))
      .map((text) => Number(text.match(/turn (\d+)/)?.[1]));
    expect(kept).toEqual([...kept].sort((a, b) => a - b));
    // each section is counted with the tokenizer
    expect(context.sections.input.tokens).toBe(4 + countText("what did we discuss?"));
  });

  it("retries a failed summary later without blocking chat turns", async () => {
    summarizeFailures = 5; // more than the model-proxy retries: the job itself fails and is retried later
    for (let batch = 0; batch < 3; batch++) {
      await client.request(Endpoints.memoryAppend, {
        meta: meta(),
        threadId: "t-flaky",
        messages: turns("flaky", batch * 10, 10),
      });
    }
    // contexts are served while the summary job fails
    const started = Date.now();
    const context = await client.request(Endpoints.memoryContext, {
      meta: meta(),
      threadId: "t-flaky",
      agent: "assistant",
      input: [say("user", "hi")],
      budgetTokens: 2000,
    });
    expect(context.messages.length).toBeGreaterThan(1);
    expect(Date.now() - started).toBeLessThan(1000);
    const summary = await waitFor(async () => {
      const row = await db.query(
        `SELECT summary FROM "${schema}".threads WHERE tenant = 'acme' AND id = 't-flaky'`,
      );
      return row.rows[0]?.summary ? (row.rows[0].summary as string) : undefined;
    }, 20_000);
    expect(summary).toMatch(/SUMMARY/);
    expect(summarizeFailures).toBe(0);
  });

  it("finds memories by keyword and by meaning, scoped by tenant", async () => {
    await client.request(Endpoints.memoryRemember, {
      meta: meta(),
      documentId: "doc-car",
      kind: "fact",
      text: "The customer drives a red automobile made in 2019.",
    });
    await client.request(Endpoints.memoryRemember, {
      meta: meta(),
      documentId: "doc-tax",
      kind: "fact",
      text: "Quarterly tax filings are due on the fifteenth.",
    });
    await client.request(Endpoints.memoryRemember, {
      meta: meta(),
      documentId: "doc-doc",
      kind: "note",
      text: "Her physician prescribed rest.",
      metadata: { topic: "health" },
    });
    await client.request(Endpoints.memoryRemember, {
      meta: meta("other"),
      documentId: "doc-secret",
      kind: "fact",
      text: "Other tenant secret: the vehicle code is 1234.",
    });
    await waitFor(async () => {
      const row = await db.query(`SELECT count(*)::int AS n FROM "${schema}".chunks WHERE embedding IS NULL`);
      return row.rows[0].n === 0 ? true : undefined;
    });
    const keyword = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "tax filings",
      limit: 3,
    });
    expect(keyword.hits[0]?.documentId).toBe("doc-tax");
    const meaning = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "what car do they own",
      limit: 3,
    });
    expect(meaning.hits[0]?.documentId).toBe("doc-car");
    expect(meaning.hits.some((hit) => hit.documentId === "doc-secret")).toBe(false);
    const filtered = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "doctor",
      filter: { topic: "health" },
      limit: 3,
    });
    expect(filtered.hits.map((hit) => hit.documentId)).toEqual(["doc-doc"]);
    const otherTenant = await client.request(Endpoints.memorySearch, {
      meta: meta("other"),
      query: "red automobile",
      limit: 5,
    });
    expect(otherTenant.hits.every((hit) => hit.documentId === "doc-secret")).toBe(true);
  });

  it("never lets one tenant read or delete another tenant's thread", async () => {
    await client.request(Endpoints.memoryAppend, {
      meta: meta("acme"),
      threadId: "t-private",
      messages: turns("p", 0, 2),
    });
    const peek = await client.request(Endpoints.memoryMessages, {
      meta: meta("intruder"),
      threadId: "t-private",
      limit: 10,
    });
    expect(peek).toMatchObject({ found: false, messages: [] });
    const context = await client.request(Endpoints.memoryContext, {
      meta: meta("intruder"),
      threadId: "t-private",
      agent: "a",
      input: [say("user", "x")],
      budgetTokens: 1000,
    });
    expect(context.sections.history.items).toBe(0);
    const forget = await client.request(Endpoints.memoryForget, {
      meta: meta("intruder"),
      threadId: "t-private",
    });
    expect(forget.deleted.messages).toBe(0);
    const still = await client.request(Endpoints.memoryMessages, {
      meta: meta("acme"),
      threadId: "t-private",
      limit: 10,
    });
    expect(still.messages).toHaveLength(2);
  });

  it("forget leaves nothing behind in Postgres or Redis", async () => {
    await client.request(Endpoints.memoryAppend, {
      meta: meta(),
      threadId: "t-gone",
      userId: "u-gone",
      messages: turns("g", 0, 3),
    });
    await client.request(Endpoints.memoryRemember, {
      meta: meta(),
      userId: "u-gone",
      documentId: "d-gone",
      text: "The user likes green tea.",
    });
    await client.request(Endpoints.memoryContext, {
      meta: meta(),
      threadId: "t-gone",
      agent: "a",
      input: [say("user", "x")],
      budgetTokens: 1000,
    });
    await client.request(Endpoints.memorySearch, { meta: meta(), query: "green tea", userId: "u-gone" });
    const result = await client.request(Endpoints.memoryForget, { meta: meta(), userId: "u-gone" });
    expect(result.deleted).toMatchObject({ threads: 1, messages: 3, documents: 1 });
    for (const table of ["threads", "messages", "documents", "chunks"]) {
      const column = table === "messages" ? "thread_id" : table === "chunks" ? "document_id" : "id";
      const value = table === "threads" || table === "messages" ? "t-gone" : "d-gone";
      const rows = await db.query(
        `SELECT 1 FROM "${schema}".${table} WHERE tenant = 'acme' AND ${column} = $1`,
        [value],
      );
      expect(rows.rowCount, table).toBe(0);
    }
    const threadKeys = await redis.keys(`${redisPrefix}mem:thread:acme:t-gone`);
    const searchKeys = await redis.keys(`${redisPrefix}mem:search:acme:*`);
    expect(threadKeys).toEqual([]);
    expect(searchKeys).toEqual([]);
  });

  it("gives the same answers after Redis loses everything", async () => {
    await client.request(Endpoints.memoryAppend, {
      meta: meta(),
      threadId: "t-flush",
      messages: turns("f", 0, 6),
    });
    const request = {
      meta: meta(),
      threadId: "t-flush",
      agent: "a",
      systemPrompt: "sys",
      input: [say("user", "next")],
      budgetTokens: 3000,
    };
    const warm = await client.request(Endpoints.memoryContext, request);
    const hot = await client.request(Endpoints.memoryContext, request);
    const search = await client.request(Endpoints.memorySearch, { meta: meta(), query: "tax", limit: 3 });
    expect(await deleteRedisKeys()).toBeGreaterThan(0);
    const cold = await client.request(Endpoints.memoryContext, request);
    const searchAfter = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "tax",
      limit: 3,
    });
    expect(hot.messages).toEqual(warm.messages);
    expect(cold.messages).toEqual(warm.messages);
    expect(searchAfter.hits).toEqual(search.hits);
  });
});

describe("token counting", () => {
  it("counts with the target model's encoding", async () => {
    const { countText, encodingFor } = await import("./tokens.js");
    expect(encodingFor("gpt-4o-mini")).toBe("o200k_base");
    expect(encodingFor("gpt-4-turbo")).toBe("cl100k_base");
    expect(encodingFor("gpt-3.5-turbo")).toBe("cl100k_base");
    const text = "Überraschung! 東京 ist größer als München 🙂";
    expect(countText(text, "cl100k_base")).not.toBe(countText(text, "o200k_base"));
    const request = {
      meta: meta(),
      agent: "a",
      input: [say("user", text)],
      budgetTokens: 1000,
      retrieval: false,
    };
    const o200k = await client.request(Endpoints.memoryContext, { ...request, model: "gpt-4o" });
    const cl100k = await client.request(Endpoints.memoryContext, { ...request, model: "gpt-4" });
    expect(o200k.sections.input.tokens).toBe(4 + countText(text, "o200k_base"));
    expect(cl100k.sections.input.tokens).toBe(4 + countText(text, "cl100k_base"));
  });
});
