import { createServer } from "node:net";
import type { Bus } from "@agent-runtime/bus";
import { createTestBus, uniquePrefix } from "@agent-runtime/bus/testing";
import { Endpoints } from "@agent-runtime/contracts";
import { loadConfig as loadProxyConfig, startModelProxy } from "@agent-runtime/model-proxy";
import { createLogger } from "@agent-runtime/telemetry";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { type RunningMemory, startMemory } from "./service.js";

// PostgreSQL with pgvector (PGlite, in this process) behind a Postgres-protocol socket
const prefix = uniquePrefix("memvec");
let db: PGlite;
let server: PGLiteSocketServer;
let url: string;
let fake: FakeOpenAI;
let proxy: { stop(): Promise<void> };
let memory: RunningMemory;
let client: Bus;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

beforeAll(async () => {
  db = await PGlite.create({ extensions: { vector } });
  const port = await freePort();
  server = new PGLiteSocketServer({ db, port, host: "127.0.0.1", maxConnections: 8 });
  await server.start();
  url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  fake = await startFakeOpenAI({ synonyms: [["car", "automobile", "vehicle"]] });
  const env = {
    NATS_PREFIX: prefix,
    REDIS_PREFIX: `${prefix}:`,
    DATABASE_URL: url,
    DATABASE_SCHEMA: "vectors",
    DATABASE_POOL_SIZE: "1", // PGlite is one database session
    OPS_PORT: "0",
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "k",
    MODEL_EMBED: "fake-embed",
  };
  const logger = createLogger({ service: "test", level: process.env.TEST_LOG_LEVEL ?? "silent" });
  proxy = await startModelProxy(loadProxyConfig(env), { logger });
  const config = loadConfig(env);
  memory = await startMemory(
    { ...config, memory: { ...config.memory, embeddingDimensions: 64 } },
    { logger },
  );
  client = await createTestBus({ prefix });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await memory?.stop();
  await proxy?.stop();
  await fake?.close();
  await server?.stop();
  await db?.close();
  // the model-proxy's embedding cache lives under this test's Redis prefix
  const redis = new Redis("redis://127.0.0.1:6379");
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe("memory on PostgreSQL with pgvector", () => {
  it("indexes embeddings with HNSW and finds by meaning through it", async () => {
    expect(memory.vectorSearch).toBe("pgvector");
    const meta = () => ({
      v: 1 as const,
      tenant: "acme",
      requestId: `r-${Math.random()}`,
      deadline: Date.now() + 10_000,
    });
    await client.request(Endpoints.memoryRemember, {
      meta: meta(),
      documentId: "car",
      text: "She drives a blue automobile to work.",
    });
    await client.request(Endpoints.memoryRemember, {
      meta: meta(),
      documentId: "tax",
      text: "Invoices are archived for ten years.",
    });
    const inspect = new pg.Client({ connectionString: url });
    await inspect.connect();
    try {
      for (let i = 0; i < 200; i++) {
        const pending = await inspect.query(
          "SELECT count(*)::int AS n FROM vectors.chunks WHERE embedding_v IS NULL",
        );
        if (pending.rows[0].n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const index = await inspect.query(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'vectors' AND indexname = 'chunks_embedding_hnsw'",
      );
      expect(index.rows[0]?.indexdef).toMatch(/USING hnsw \(embedding_v vector_cosine_ops\)/);
      // the search's query shape is served by the index (a table this small would otherwise be scanned)
      await inspect.query("BEGIN");
      await inspect.query("SET LOCAL enable_seqscan = off");
      await inspect.query("SET LOCAL enable_sort = off");
      const plan = await inspect.query(
        `EXPLAIN SELECT id FROM vectors.chunks WHERE tenant = 'acme' AND user_id IS NULL AND embedding_v IS NOT NULL
         ORDER BY embedding_v <=> '[${Array(64).fill(0.125).join(",")}]'::vector LIMIT 50`,
      );
      await inspect.query("COMMIT");
      expect(plan.rows.map((row) => row["QUERY PLAN"]).join("\n")).toMatch(/chunks_embedding_hnsw/);
    } finally {
      await inspect.end();
    }
    const hits = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "which vehicle",
      limit: 2,
    });
    // no word in common: found through the HNSW index alone
    expect(hits.hits.map((hit) => hit.documentId)).toEqual(["car"]);
    const other = await client.request(Endpoints.memorySearch, {
      meta: { ...meta(), tenant: "other" },
      query: "which vehicle",
    });
    expect(other.hits).toEqual([]);
    // new text replaces the indexed vector too: the old meaning is no longer found
    await client.request(Endpoints.memoryRemember, {
      meta: meta(),
      documentId: "car",
      text: "She rides a bicycle now.",
    });
    const check = new pg.Client({ connectionString: url });
    await check.connect();
    try {
      for (let i = 0; i < 200; i++) {
        const pending = await check.query(
          "SELECT count(*)::int AS n FROM vectors.chunks WHERE embedding_v IS NULL",
        );
        if (pending.rows[0].n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await check.end();
    }
    const after = await client.request(Endpoints.memorySearch, { meta: meta(), query: "which vehicle" });
    expect(after.hits).toEqual([]);
    const bicycle = await client.request(Endpoints.memorySearch, { meta: meta(), query: "bicycle" });
    expect(bicycle.hits[0]?.text).toBe("She rides a bicycle now.");
  });
});
