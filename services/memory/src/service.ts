import { createHash } from "node:crypto";
import { type Bus, connectBus, consume } from "@agent-runtime/bus";
import {
  Endpoints,
  type MemoryHit,
  MemoryJob,
  MemorySearchReply,
  QueueGroups,
  type RequestMeta,
  Subjects,
  textOf,
} from "@agent-runtime/contracts";
import { createPool, createRedis, migrate, redisReady } from "@agent-runtime/stores";
import { createLogger, createMetrics, type Logger, startOpsServer } from "@agent-runtime/telemetry";
import type { MemoryConfig } from "./config.js";
import { assembleContext } from "./context.js";
import { forgetRows } from "./forget.js";
import { Knowledge } from "./knowledge.js";
import { MIGRATIONS } from "./schema.js";
import { Summarizer } from "./summarizer.js";
import { ThreadStore } from "./thread-store.js";
import { enablePgvector } from "./vector-store.js";

export interface RunningMemory {
  bus: Bus;
  /** Which embedding search runs: pgvector's HNSW index or the stock-PostgreSQL LSH path. */
  vectorSearch: "pgvector" | "lsh";
  opsPort: number;
  stop(): Promise<void>;
}

export async function startMemory(
  config: MemoryConfig,
  options: { logger?: Logger } = {},
): Promise<RunningMemory> {
  const logger = options.logger ?? createLogger({ service: "memory", level: config.logLevel });
  const bus = await connectBus({ name: "memory", url: config.natsUrl, prefix: config.natsPrefix, logger });
  const pool = await createPool({
    url: config.databaseUrl,
    schema: config.databaseSchema,
    applicationName: "memory",
    max: config.databasePoolSize,
  });
  await migrate(pool, "memory", MIGRATIONS);
  const redis = createRedis(config.redisUrl, logger);
  const metrics = createMetrics("memory");
  const threads = new ThreadStore(pool, redis, config.redisPrefix, config.memory.hotTurns);
  const pgvector = await enablePgvector(pool, config.memory.embeddingDimensions).catch((error: unknown) => {
    logger.warn({ err: error }, "pgvector could not be set up; using the stock PostgreSQL search");
    return false;
  });
  const knowledge = new Knowledge(
    pool,
    bus,
    config.memory.chunkTokens,
    pgvector ? config.memory.embeddingDimensions : undefined,
  );
  const summarizer = new Summarizer(pool, bus, threads, config.memory.keepRecentTurns);
  const hotHits = metrics.counter("memory_context_total", "context builds", ["source"]);
  const serve = { queue: QueueGroups.memory, maxInFlight: config.maxInFlight };

  const jobMeta = (tenant: string, id: string): RequestMeta => ({
    v: 1,
    tenant,
    requestId: id,
    deadline: Date.now() + 120_000,
  });

  const queueJob = (job: MemoryJob, msgId: string) =>
    bus
      .publishDurable(Subjects.memoryJobs, MemoryJob, job, { msgId })
      .catch((error: unknown) => logger.warn({ err: error, job }, "memory job not queued"));

  const search = async (
    request: Parameters<Knowledge["search"]>[0],
  ): Promise<{ hits: MemoryHit[]; cached: boolean }> => {
    const key = `${config.redisPrefix}mem:search:${request.meta.tenant}:${createHash("sha256")
      .update(
        JSON.stringify([
          request.query,
          request.userId,
          request.kinds,
          request.filter,
          request.limit,
          request.budgetTokens,
          request.minScore,
        ]),
      )
      .digest("hex")}`;
    if (config.memory.searchCacheTtlSeconds > 0 && redisReady(redis)) {
      const cached = await redis.get(key).catch(() => null);
      if (cached) {
        const parsed = MemorySearchReply.safeParse(JSON.parse(cached));
        if (parsed.success) return { hits: parsed.data.hits, cached: true };
      }
    }
    const hits = await knowledge.search(request);
    if (config.memory.searchCacheTtlSeconds > 0 && redisReady(redis)) {
      await redis
        .set(key, JSON.stringify({ hits, cached: false }), "EX", config.memory.searchCacheTtlSeconds)
        .catch(() => undefined);
    }
    return { hits, cached: false };
  };

  bus.serve(
    Endpoints.memoryContext,
    async (request) => {
      const tenant = request.meta.tenant;
      const state = request.threadId
        ? await threads.state(tenant, request.threadId)
        : { found: false, summary: null, summaryTokens: 0, messages: [], hot: false };
      hotHits.inc({ source: state.hot ? "redis" : request.threadId ? "postgres" : "none" });
      let retrieved: MemoryHit[] = [];
      if (request.retrieval) {
        const query = textOf(
          [...request.input].reverse().find((message) => message.role === "user")?.content ?? "",
        );
        if (query) {
          retrieved = await search({
            meta: request.meta,
            query: query.slice(0, 4000),
            ...(request.userId ? { userId: request.userId } : {}),
            limit: 8,
          })
            .then((result) => result.hits)
            .catch(() => []);
        }
      }
      return assembleContext(request, state, retrieved);
    },
    serve,
  );

  bus.serve(
    Endpoints.memoryAppend,
    async (request) => {
      const tenant = request.meta.tenant;
      const result = await threads.append(tenant, request.threadId, request.messages, {
        ...(request.userId ? { userId: request.userId } : {}),
        ...(request.agent ? { agent: request.agent } : {}),
      });
      if (result.appended > 0 && result.historyTokens > config.memory.summarizeAfterTokens) {
        const bucket = Math.floor(result.historyTokens / config.memory.summarizeAfterTokens);
        void queueJob(
          { kind: "summarize", tenant, threadId: request.threadId, requestedAt: Date.now() },
          `summarize:${tenant}:${request.threadId}:${bucket}:${request.messages[0]?.id ?? ""}`,
        );
      }
      return { appended: result.appended, skipped: result.skipped };
    },
    serve,
  );

  bus.serve(
    Endpoints.memoryMessages,
    async (request) => {
      const result = await threads.list(request.meta.tenant, request.threadId, request.limit);
      return { threadId: request.threadId, found: result.found, messages: result.messages };
    },
    serve,
  );

  bus.serve(Endpoints.memorySearch, (request) => search(request), serve);

  bus.serve(
    Endpoints.memoryRemember,
    async (request) => {
      const result = await knowledge.remember(request);
      if (result.changed && result.chunks > 0) {
        await bus.publishDurable(
          Subjects.memoryJobs,
          MemoryJob,
          {
            kind: "index",
            tenant: request.meta.tenant,
            documentId: result.documentId,
            requestedAt: Date.now(),
          },
          { msgId: `index:${request.meta.tenant}:${result.documentId}:${Date.now()}` },
        );
      }
      return {
        documentId: result.documentId,
        chunks: result.chunks,
        queued: result.changed && result.chunks > 0,
      };
    },
    serve,
  );

  bus.serve(
    Endpoints.memoryForget,
    async (request) => {
      const tenant = request.meta.tenant;
      const { deleted, threadIds } = await forgetRows(pool, tenant, request);
      for (const threadId of threadIds) await threads.invalidate(tenant, threadId);
      if (redisReady(redis)) {
        // cached searches of this tenant may hold deleted text
        const stream = redis.scanStream({ match: `${config.redisPrefix}mem:search:${tenant}:*`, count: 500 });
        for await (const keys of stream as AsyncIterable<string[]>)
          if (keys.length > 0) await redis.del(...keys).catch(() => undefined);
      }
      return { deleted };
    },
    serve,
  );

  await bus.ensureStreams(["MEMORY_JOBS"]);
  await consume(bus, {
    stream: "MEMORY_JOBS",
    durable: "memory-jobs",
    schema: MemoryJob,
    concurrency: config.jobConcurrency,
    maxDeliver: 6,
    backoff: { initialMs: 2000, maxMs: 60_000 },
    ackWaitMs: 60_000,
    deadLetterOrigin: "memory-jobs",
    handler: async (job) => {
      if (job.kind === "summarize")
        await summarizer.summarize(
          job.tenant,
          job.threadId,
          jobMeta(job.tenant, `summarize:${job.threadId}:${job.requestedAt}`),
        );
      else
        await knowledge.index(
          job.tenant,
          job.documentId,
          jobMeta(job.tenant, `index:${job.documentId}:${job.requestedAt}`),
        );
    },
  });

  const ops = await startOpsServer({
    port: config.opsPort,
    metrics,
    logger,
    isDraining: () => bus.isDraining,
    checks: {
      nats: () => bus.ping(),
      postgres: async () => {
        await pool.query("SELECT 1");
      },
    },
  });
  logger.info(
    { opsPort: ops.port, vectorSearch: pgvector ? "pgvector hnsw" : "lsh buckets" },
    "memory ready",
  );
  return {
    bus,
    vectorSearch: pgvector ? "pgvector" : "lsh",
    opsPort: ops.port,
    stop: async () => {
      await bus.drain();
      await ops.close();
      await pool.end();
      redis.disconnect();
    },
  };
}
