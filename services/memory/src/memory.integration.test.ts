import type { Bus } from "@agent-runtime/bus";
import { createTestBus, uniquePrefix } from "@agent-runtime/bus/testing";
import {
  type ChatMessage,
  Endpoints,
  MemoryAppendRequest,
  RuntimeError,
  type StoredMessage,
  Subjects,
} from "@agent-runtime/contracts";
import { loadConfig as loadProxyConfig, startModelProxy } from "@agent-runtime/model-proxy";
import { createLogger } from "@agent-runtime/telemetry";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { type RunningMemory, startMemory } from "./service.js";
import { countText } from "./tokens.js";

// Real NATS, Postgres and Redis; the real model-proxy in front of the testkit fake model.
const prefix = uniquePrefix("mem");
const schema = prefix.toLowerCase();
const redisPrefix = `${prefix}:`;
let fake: FakeOpenAI;
let memory: RunningMemory;
let proxy: { stop(): Promise<void> };
let client: Bus;
let db: pg.Client;
let redis: Redis;
let failSummariesUntil = 0;
let summaryFailures = 0;
let summaryAttemptsAfterFailures = 0;

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

async function redisKeys(pattern = "*"): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${redisPrefix}${pattern}`, "COUNT", 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== "0");
  return found;
}

/** What a Redis restart does to this test's keys (never FLUSHALL: other tests share this Redis). */
async function loseRedis(): Promise<number> {
  const keys = await redisKeys();
  return keys.length > 0 ? redis.del(...keys) : 0;
}

const embeddedInputs = () =>
  fake.requests
    .filter((request) => request.path.endsWith("/embeddings"))
    .flatMap((request) => {
      const input = (request.body as { input: string | string[] }).input;
      return Array.isArray(input) ? input : [input];
    });

const pendingEmbeddings = async () => {
  const row = await db.query(`SELECT count(*)::int AS n FROM "${schema}".chunks WHERE vector IS NULL`);
  return row.rows[0].n === 0 ? true : undefined;
};

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
      if (Date.now() < failSummariesUntil) {
        summaryFailures++;
        return { fault: { kind: "status", status: 500 } };
      }
      if (summaryFailures > 0) summaryAttemptsAfterFailures++;
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
    MAX_RETRIES: "1",
    BREAKER_FAILURES: "1000",
    EMBEDDING_CACHE_TTL_SECONDS: "0",
    RESPONSE_CACHE_TTL_SECONDS: "0",
    JOB_RETRY_MS: "300",
  };
  const logger = createLogger({ service: "test", level: process.env.TEST_LOG_LEVEL ?? "silent" });
  proxy = await startModelProxy(loadProxyConfig(env), { logger });
  const config = loadConfig(env);
  memory = await startMemory(
    { ...config, memory: { ...config.memory, summarizeAfterTokens: 400, keepRecentTurns: 4 } },
    { logger },
  );
  client = await createTestBus({ prefix });
  db = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await db.connect();
  redis = new Redis("redis://127.0.0.1:6379");
}, 30_000);

afterAll(async () => {
  await client?.close();
  await memory?.stop();
  await proxy?.stop();
  await fake?.close();
  await db?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db?.end();
  await loseRedis().catch(() => 0);
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

describe("threads", () => {
  it("appends idempotently by message id and pages a thread's messages", async () => {
    const first = await client.request(Endpoints.memoryAppend, {
      meta: meta(),
      threadId: "t-idem",
      messages: turns("a", 0, 4),
    });
    const again = await client.request(Endpoints.memoryAppend, {
      meta: meta(),
      threadId: "t-idem",
      messages: [...turns("a", 2, 2), ...turns("a", 4, 1)],
    });
    expect(first).toEqual({ appended: 4, skipped: 0 });
    expect(again).toEqual({ appended: 1, skipped: 2 });
    const listed = await client.request(Endpoints.memoryMessages, {
      meta: meta(),
      threadId: "t-idem",
      limit: 2,
    });
    expect(listed.messages.map((message) => message.id)).toEqual(["a:3", "a:4"]);
    const before = await client.request(Endpoints.memoryMessages, {
      meta: meta(),
      threadId: "t-idem",
      limit: 10,
      before: "a:3",
    });
    expect(before.messages.map((message) => message.id)).toEqual(["a:0", "a:1", "a:2"]);
    // the hot copy holds every message exactly once
    const context = await client.request(Endpoints.memoryContext, {
      meta: meta(),
      threadId: "t-idem",
      agent: "a",
      input: [say("user", "next")],
      budgetTokens: 5000,
    });
    expect(context.sections.history.items).toBe(5);
  });

  it("a turn journaled by the orchestrator is in its thread for the very next read, and stored once", async () => {
    const entry: MemoryAppendRequest = {
      meta: { ...meta(), runId: "run_j1" },
      threadId: "t-journaled.1",
      agent: "assistant",
      messages: [
        { id: "run_j1:0", message: say("user", "my locker is 42") },
        { id: "run_j1:1", message: say("assistant", "noted") },
      ],
    };
    await client.publishDurable(Subjects.threadTurns("acme", entry.threadId), MemoryAppendRequest, entry, {
      msgId: "turn:run_j1",
    });
    // asked at once: whether or not the background consumer got to it, the context holds the turn
    const context = await client.request(Endpoints.memoryContext, {
      meta: meta(),
      threadId: entry.threadId,
      agent: "assistant",
      input: [say("user", "which locker?")],
      budgetTokens: 5000,
    });
    expect(JSON.stringify(context.messages)).toContain("my locker is 42");
    const stored = await waitFor(async () => {
      const rows = await db.query(
        `SELECT id FROM "${schema}".messages WHERE tenant = 'acme' AND thread_id = $1 ORDER BY seq`,
        [entry.threadId],
      );
      return rows.rows.length === 2 ? rows.rows.map((row) => row.id as string) : undefined;
    });
    expect(stored).toEqual(["run_j1:0", "run_j1:1"]);
  });

  it("summarises a long thread off the critical path; contexts stay in budget with summary and newest turns", async () => {
    for (let batch = 0; batch < 6; batch++) {
      await client.request(Endpoints.memoryAppend, {
        meta: meta(),
        threadId: "t-long",
        messages: turns("long", batch * 10, 10),
      });
    }
    const summary = await waitFor(async () => {
      const row = await db.query(
        `SELECT summary, summary_upto FROM "${schema}".threads WHERE tenant = 'acme' AND id = 't-long'`,
      );
      const upto = Number(row.rows[0]?.summary_upto ?? 0);
      const last = await db.query(
        `SELECT max(seq) AS seq FROM "${schema}".messages WHERE tenant = 'acme' AND thread_id = 't-long'`,
      );
      // settled: all but the 4 newest messages folded in
      return upto >= Number(last.rows[0].seq) - 4 - 10 && row.rows[0]?.summary
        ? (row.rows[0].summary as string)
        : undefined;
    });
    expect(summary).toMatch(/^SUMMARY covering/);
    const summaryCall = fake
      .chatRequests()
      .find((body) => String(body.messages[0]?.content).includes("running summary"));
    expect(summaryCall?.model).toBe("gpt-4o-mini"); // the fast tier
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
    expect(texts[1]).toMatch(/Summary of the earlier conversation:\nSUMMARY/);
    expect(texts.at(-1)).toBe("what did we discuss?");
    expect(texts.at(-2)).toMatch(/^turn 59 /); // newest stored turn kept
    const kept = texts
      .filter((text) => text.startsWith("turn "))
      .map((text) => Number(text.match(/turn (\d+)/)?.[1]));
    expect(kept.length).toBeGreaterThanOrEqual(4);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 60 - kept.length + i));
    expect(context.sections.input.tokens).toBe(4 + countText("what did we discuss?"));
  });

  it("retries a failed summary later and never blocks chat turns meanwhile", async () => {
    // the model fails every summary for 1.5 s: longer than the proxy's own retries, so jobs fail and are redelivered
    failSummariesUntil = Date.now() + 1500;
    for (let batch = 0; batch < 3; batch++) {
      await client.request(Endpoints.memoryAppend, {
        meta: meta(),
        threadId: "t-flaky",
        messages: turns("flaky", batch * 10, 10),
      });
    }
    await waitFor(async () => (summaryFailures > 0 ? true : undefined));
    const context = await client.request(Endpoints.memoryContext, {
      meta: meta(),
      threadId: "t-flaky",
      agent: "assistant",
      input: [say("user", "hi")],
      budgetTokens: 4000,
    });
    expect(Date.now()).toBeLessThan(failSummariesUntil); // answered while summaries were failing
    expect(context.sections.summary.items).toBe(0);
    expect(context.sections.history.items).toBe(30);
    const summary = await waitFor(async () => {
      const row = await db.query(
        `SELECT summary FROM "${schema}".threads WHERE tenant = 'acme' AND id = 't-flaky'`,
      );
      return row.rows[0]?.summary ? (row.rows[0].summary as string) : undefined;
    }, 20_000);
    expect(summary).toMatch(/SUMMARY/);
    expect(summaryAttemptsAfterFailures).toBeGreaterThan(0);
    const later = await client.request(Endpoints.memoryContext, {
      meta: meta(),
      threadId: "t-flaky",
      agent: "assistant",
      input: [say("user", "hi")],
      budgetTokens: 4000,
    });
    expect(later.sections.summary.items).toBe(1);
    expect(later.sections.history.items).toBeLessThan(30);
  });
});

describe("long-term memory", () => {
  it("finds by keyword and by meaning, filtered by metadata and scoped by tenant and user", async () => {
    const remember = (tenant: string, documentId: string, text: string, extra: object = {}) =>
      client.request(Endpoints.memoryRemember, {
        meta: meta(tenant),
        documentId,
        kind: "fact",
        text,
        ...extra,
      });
    await remember("acme", "doc-car", "The customer drives a red automobile made in 2019.");
    await remember("acme", "doc-tax", "Quarterly tax filings are due on the fifteenth.");
    await remember("acme", "doc-doc", "Her physician prescribed rest.", {
      kind: "note",
      metadata: { topic: "health" },
    });
    await remember("acme", "doc-ann", "Ann is allergic to peanuts.", { userId: "ann" });
    await remember("other", "doc-secret", "Other tenant secret: the vehicle code is 1234.");
    await waitFor(pendingEmbeddings);

    const keyword = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "tax filings",
      limit: 3,
    });
    expect(keyword.hits[0]?.documentId).toBe("doc-tax");
    // no word in common: only the embedding knows a car is an automobile
    const meaning = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "which car",
      limit: 3,
    });
    expect(meaning.hits[0]?.documentId).toBe("doc-car");
    expect(meaning.hits.every((hit) => hit.documentId !== "doc-secret")).toBe(true);
    // relevance floor: nothing related, nothing returned
    const unrelated = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "zebra migration",
      limit: 3,
    });
    expect(unrelated.hits).toEqual([]);
    const filtered = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "doctor",
      filter: { topic: "health" },
      limit: 3,
    });
    expect(filtered.hits.map((hit) => hit.documentId)).toEqual(["doc-doc"]);
    const wrongFilter = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "doctor",
      filter: { topic: "sports" },
    });
    expect(wrongFilter.hits).toEqual([]);
    // a user's own memories reach that user only
    const ann = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "peanuts allergy",
      userId: "ann",
    });
    expect(ann.hits[0]?.documentId).toBe("doc-ann");
    const bob = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "peanuts allergy",
      userId: "bob",
    });
    const anonymous = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "peanuts allergy",
    });
    expect([...bob.hits, ...anonymous.hits].some((hit) => hit.documentId === "doc-ann")).toBe(false);
    // tenant-wide knowledge (an agent with `memory.scope: tenant`) reads every user's memories,
    // still within the tenant; its cached hits never answer a user-scoped search
    const tenantWide = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "peanuts allergy",
      userId: "bob",
      scope: "tenant",
    });
    expect(tenantWide.hits[0]?.documentId).toBe("doc-ann");
    const bobAgain = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "peanuts allergy",
      userId: "bob",
    });
    expect(bobAgain.hits.some((hit) => hit.documentId === "doc-ann")).toBe(false);
    const otherTenantWide = await client.request(Endpoints.memorySearch, {
      meta: meta("other"),
      query: "peanuts allergy",
      scope: "tenant",
    });
    expect(otherTenantWide.hits.some((hit) => hit.documentId === "doc-ann")).toBe(false);
    // token budget caps the hits
    const budgeted = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "automobile tax physician",
      limit: 10,
      budgetTokens: 15,
    });
    expect(budgeted.hits.reduce((sum, hit) => sum + hit.tokens, 0)).toBeLessThanOrEqual(15);
    // the second identical search is served from the Redis cache
    const again = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "tax filings",
      limit: 3,
    });
    expect(again).toEqual({ ...keyword, cached: true });
  });

  it("never re-embeds unchanged text", async () => {
    // six paragraphs of about 110 tokens: three chunks of two paragraphs at the default 300-token target
    const paragraphs = Array.from({ length: 6 }, (_, n) =>
      Array.from(
        { length: 6 },
        (_, s) => `Paragraph ${n} sentence ${s} explains warranty clause ${n}.${s} in careful detail`,
      ).join(". "),
    );
    const remember = (text: string) =>
      client.request(Endpoints.memoryRemember, {
        meta: meta(),
        documentId: "handbook",
        kind: "document",
        text,
        metadata: { source: "handbook" },
      });
    const before = embeddedInputs().length;
    const first = await remember(paragraphs.join("\n\n"));
    expect(first.queued).toBe(true);
    await waitFor(pendingEmbeddings);
    const afterFirst = embeddedInputs().length;
    expect(afterFirst - before).toBe(first.chunks);
    // same text again: nothing queued, nothing embedded
    const same = await remember(paragraphs.join("\n\n"));
    expect(same).toEqual({ documentId: "handbook", chunks: first.chunks, queued: false });
    // one paragraph inserted at the front: only the chunk(s) with new text are embedded
    const changed = await remember([`Paragraph new covers shipping.`, ...paragraphs].join("\n\n"));
    expect(changed.queued).toBe(true);
    await waitFor(pendingEmbeddings);
    const newInputs = embeddedInputs().slice(afterFirst);
    expect(newInputs.length).toBeGreaterThan(0);
    expect(first.chunks).toBe(3);
    expect(newInputs).toHaveLength(1);
    expect(newInputs.some((text) => text.includes("Paragraph new"))).toBe(true);
    const hit = await client.request(Endpoints.memorySearch, { meta: meta(), query: "shipping", limit: 1 });
    expect(hit.hits[0]?.text).toContain("Paragraph new covers shipping");
  });

  it("puts retrieved memories into a context when asked", async () => {
    await client.request(Endpoints.memoryRemember, {
      meta: meta("ctx"),
      userId: "u1",
      kind: "profile",
      documentId: "pref",
      text: "The user prefers answers in French.",
    });
    await waitFor(pendingEmbeddings);
    const context = await client.request(Endpoints.memoryContext, {
      meta: meta("ctx"),
      agent: "assistant",
      systemPrompt: "sys",
      input: [say("user", "which language answers does the user prefer?")],
      budgetTokens: 2000,
      retrieval: true,
      userId: "u1",
    });
    expect(context.sections.retrieved.items).toBe(1);
    expect(String(context.messages[1]?.content)).toContain("prefers answers in French");
    const stranger = await client.request(Endpoints.memoryContext, {
      meta: meta("ctx"),
      agent: "assistant",
      input: [say("user", "which language answers does the user prefer?")],
      budgetTokens: 2000,
      retrieval: true,
      userId: "u2",
    });
    expect(stranger.sections.retrieved.items).toBe(0);
  });
});

describe("isolation and deletion", () => {
  it("never lets one tenant read, search or delete another tenant's data", async () => {
    await client.request(Endpoints.memoryAppend, {
      meta: meta("acme"),
      threadId: "t-private",
      messages: turns("p", 0, 2),
    });
    await client.request(Endpoints.memoryRemember, {
      meta: meta("acme"),
      documentId: "acme-plan",
      text: "The acme merger closes in March.",
    });
    await waitFor(pendingEmbeddings);
    const intruder = meta("intruder");
    const peek = await client.request(Endpoints.memoryMessages, {
      meta: intruder,
      threadId: "t-private",
      limit: 10,
    });
    expect(peek).toMatchObject({ found: false, messages: [] });
    const context = await client.request(Endpoints.memoryContext, {
      meta: meta("intruder"),
      threadId: "t-private",
      agent: "a",
      input: [say("user", "acme merger")],
      budgetTokens: 1000,
      retrieval: true,
    });
    expect(context.sections.history.items).toBe(0);
    expect(context.sections.retrieved.items).toBe(0);
    const search = await client.request(Endpoints.memorySearch, {
      meta: meta("intruder"),
      query: "acme merger March",
    });
    expect(search.hits).toEqual([]);
    const forget = await client.request(Endpoints.memoryForget, {
      meta: meta("intruder"),
      threadId: "t-private",
    });
    const forgetDoc = await client.request(Endpoints.memoryForget, {
      meta: meta("intruder"),
      documentId: "acme-plan",
    });
    expect(forget.deleted).toEqual({ messages: 0, threads: 0, documents: 0, chunks: 0 });
    expect(forgetDoc.deleted).toEqual({ messages: 0, threads: 0, documents: 0, chunks: 0 });
    // writing under the same ids creates the intruder's own records, never touches acme's
    await client.request(Endpoints.memoryAppend, {
      meta: meta("intruder"),
      threadId: "t-private",
      messages: turns("p", 0, 1),
    });
    const still = await client.request(Endpoints.memoryMessages, {
      meta: meta("acme"),
      threadId: "t-private",
      limit: 10,
    });
    expect(still.messages).toHaveLength(2);
    const found = await client.request(Endpoints.memorySearch, {
      meta: meta("acme"),
      query: "acme merger March",
    });
    expect(found.hits[0]?.documentId).toBe("acme-plan");
  });

  it("forget leaves nothing behind in Postgres or Redis", async () => {
    await client.request(Endpoints.memoryAppend, {
      meta: meta("gone"),
      threadId: "t-gone",
      userId: "u-gone",
      messages: turns("g", 0, 3),
    });
    await client.request(Endpoints.memoryRemember, {
      meta: meta("gone"),
      userId: "u-gone",
      documentId: "d-gone",
      text: "The user likes green tea.",
    });
    await client.request(Endpoints.memoryRemember, {
      meta: meta("gone"),
      documentId: "d-shared",
      text: "Tea is served at four.",
    });
    await waitFor(pendingEmbeddings);
    await client.request(Endpoints.memoryContext, {
      meta: meta("gone"),
      threadId: "t-gone",
      agent: "a",
      input: [say("user", "x")],
      budgetTokens: 1000,
    });
    await client.request(Endpoints.memorySearch, {
      meta: meta("gone"),
      query: "green tea",
      userId: "u-gone",
    });
    expect((await redisKeys("mem:*:gone:*")).length).toBeGreaterThan(0);
    const result = await client.request(Endpoints.memoryForget, { meta: meta("gone"), userId: "u-gone" });
    expect(result.deleted).toEqual({ threads: 1, messages: 3, documents: 1, chunks: 1 });
    for (const [table, column, value] of [
      ["threads", "id", "t-gone"],
      ["messages", "thread_id", "t-gone"],
      ["documents", "id", "d-gone"],
      ["chunks", "document_id", "d-gone"],
      ["chunk_signatures", "chunk_id", "d-gone:1"],
    ] as const) {
      const rows = await db.query(
        `SELECT 1 FROM "${schema}".${table} WHERE tenant = 'gone' AND ${column} = $1`,
        [value],
      );
      expect(rows.rowCount, table).toBe(0);
    }
    // only change counters (no content) may outlive a forget, briefly
    const left = await redisKeys("mem:*:gone:*");
    for (const key of left) {
      expect(key).toMatch(/:(version|epoch)$/);
      expect(await redis.get(key)).toMatch(/^\d+$/);
    }
    const after = await client.request(Endpoints.memorySearch, {
      meta: meta("gone"),
      query: "green tea",
      userId: "u-gone",
    });
    expect(after.hits.map((hit) => hit.documentId)).toEqual(["d-shared"]);
  });
});

describe("redis", () => {
  it("losing Redis mid-conversation changes speed, not answers", async () => {
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
    const cold = await client.request(Endpoints.memoryContext, request);
    const hot = await client.request(Endpoints.memoryContext, request);
    expect(await redis.exists(`${redisPrefix}mem:thread:acme:t-flush`)).toBe(1);
    const search = await client.request(Endpoints.memorySearch, { meta: meta(), query: "tax", limit: 3 });
    expect(await loseRedis()).toBeGreaterThan(0);
    const afterLoss = await client.request(Endpoints.memoryContext, request);
    const searchAfter = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "tax",
      limit: 3,
    });
    expect(hot).toEqual(cold);
    expect(afterLoss).toEqual(cold);
    expect(searchAfter.hits).toEqual(search.hits);
    // appends after the loss reach the next context (rebuilt from Postgres, then hot again)
    await client.request(Endpoints.memoryAppend, {
      meta: meta(),
      threadId: "t-flush",
      messages: turns("f", 6, 2),
    });
    await loseRedis();
    const rebuilt = await client.request(Endpoints.memoryContext, request);
    await client.request(Endpoints.memoryAppend, {
      meta: meta(),
      threadId: "t-flush",
      messages: turns("f", 8, 1),
    });
    const extended = await client.request(Endpoints.memoryContext, request);
    expect(rebuilt.sections.history.items).toBe(8);
    expect(extended.sections.history.items).toBe(9);
    expect(String(extended.messages.at(-2)?.content)).toMatch(/^turn 8 of f/);
  });
});

describe("boundaries", () => {
  it("answers a malformed request with a validation error and keeps serving", async () => {
    const bad = client.request(
      { ...Endpoints.memoryContext, request: Endpoints.memoryContext.request.passthrough() } as never,
      { meta: meta(), agent: "a", input: [{ role: "wizard", content: "x" }], budgetTokens: -1 } as never,
    );
    await expect(bad).rejects.toBeInstanceOf(RuntimeError);
    await expect(bad).rejects.toMatchObject({ code: "validation" });
    const good = await client.request(Endpoints.memoryContext, {
      meta: meta(),
      agent: "a",
      input: [say("user", "still there?")],
      budgetTokens: 100,
    });
    expect(good.messages).toHaveLength(1);
  });

  it("counts with the target model's encoding", async () => {
    const { encodingFor } = await import("./tokens.js");
    expect(encodingFor("gpt-4o-mini")).toBe("o200k_base");
    expect(encodingFor("gpt-4-turbo")).toBe("cl100k_base");
    const text = "Überraschung! 東京 ist größer als München 🙂";
    expect(countText(text, "cl100k_base")).not.toBe(countText(text, "o200k_base"));
    const request = { meta: meta(), agent: "a", input: [say("user", text)], budgetTokens: 1000 };
    const o200k = await client.request(Endpoints.memoryContext, { ...request, model: "gpt-4o" });
    const cl100k = await client.request(Endpoints.memoryContext, { ...request, model: "gpt-4" });
    expect(o200k.sections.input.tokens).toBe(4 + countText(text, "o200k_base"));
    expect(cl100k.sections.input.tokens).toBe(4 + countText(text, "cl100k_base"));
  });
});
