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
    } finally {
      await inspect.end();
    }
    const hits = await client.request(Endpoints.memorySearch, {
      meta: meta(),
      query: "what vehicle does she use",
      limit: 2,
    });
    expect(hits.hits[0]?.documentId).toBe("car");
  });
});
