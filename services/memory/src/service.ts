import { type Bus, consume } from "@agent-runtime/bus";
import { Consumers, Endpoints, MemoryJob, QueueGroups, type RequestMeta } from "@agent-runtime/contracts";
import { openServiceContext } from "@agent-runtime/service";
import { migrate } from "@agent-runtime/stores";
import { createLogger, type Logger } from "@agent-runtime/telemetry";
import type { MemoryConfig } from "./config.js";
import { createHandlers } from "./handlers.js";
import { Knowledge } from "./knowledge.js";
import { MIGRATIONS } from "./schema.js";
import { HybridSearch } from "./search.js";
import { SearchCache } from "./search-cache.js";
import { Summarizer } from "./summarizer.js";
import { ThreadStore } from "./thread-store.js";
import { ThreadTurns } from "./thread-turns.js";
import { enablePgvector } from "./vector-store.js";

export interface RunningMemory {
  bus: Bus;
  /** Which embedding search runs: pgvector's HNSW index, or bit signatures + exact re-rank on stock PostgreSQL. */
  vectorSearch: "pgvector" | "signatures";
  opsPort: number;
  stop(): Promise<void>;
}

export async function startMemory(
  config: MemoryConfig,
  options: { logger?: Logger } = {},
): Promise<RunningMemory> {
  const logger = options.logger ?? createLogger({ service: "memory", level: config.logLevel });
  const settings = config.memory;
  const context = await openServiceContext({
    name: "memory",
    config,
    logger,
    postgres: true,
    poolSize: config.databasePoolSize,
    redis: true,
  });
  const { bus, pool, redis, metrics } = context;
  await migrate(pool, "memory", MIGRATIONS);
  const pgvector = await enablePgvector(pool, settings.embeddingDimensions).catch((error: unknown) => {
    logger.warn({ err: error }, "pgvector could not be set up; using the stock PostgreSQL search");
    return undefined;
  });
  const threads = new ThreadStore(pool, redis, config.redisPrefix, settings.hotTurns);
  const knowledge = new Knowledge(pool, bus, settings.chunkTokens, pgvector?.dimensions);
  const hybrid = new HybridSearch(
    pool,
    bus,
    { minScore: settings.minScore, minSimilarity: settings.minSimilarity },
    pgvector,
  );
  const cache = new SearchCache(redis, config.redisPrefix, settings.searchCacheTtlSeconds);
  const summarizer = new Summarizer(pool, bus, threads, settings.keepRecentTurns);
  // turns journaled by the orchestrator are stored through the append handler (declared below)
  const turns = new ThreadTurns(bus, logger, (turn, { background }) =>
    handlers.append(turn, background ? { gatherMs: config.turnGatherMs } : {}),
  );
  const handlers = createHandlers({
    bus,
    pool,
    threads,
    turns,
    knowledge,
    hybrid,
    cache,
    metrics,
    logger,
    settings: {
      summarizeAfterTokens: settings.summarizeAfterTokens,
      retrievalLimit: settings.retrievalLimit,
      shares: { summary: settings.summaryShare, retrieved: settings.retrievalShare },
    },
  });

  const serve = { queue: QueueGroups.memory, maxInFlight: config.maxInFlight };
  bus.serve(Endpoints.memoryContext, handlers.context, serve);
  bus.serve(Endpoints.memoryAppend, (request) => handlers.append(request), serve);
  bus.serve(Endpoints.memoryMessages, handlers.messages, serve);
  bus.serve(Endpoints.memorySearch, handlers.search, serve);
  bus.serve(Endpoints.memoryRemember, handlers.remember, serve);
  bus.serve(Endpoints.memoryForget, handlers.forget, serve);
  bus.serve(Endpoints.memoryList, handlers.list, serve);

  // summaries and indexing: the non-critical queue, at low concurrency
  const jobs = metrics.counter("memory_jobs_total", "memory.jobs processed", ["kind", "outcome"]);
  const jobMeta = (tenant: string, requestId: string): RequestMeta => ({
    v: 1,
    tenant,
    requestId,
    deadline: Date.now() + 120_000,
  });
  await turns.start(config.turnConcurrency);
  await bus.ensureStreams(["MEMORY_JOBS"]);
  const consumer = await consume(bus, {
    stream: "MEMORY_JOBS",
    durable: Consumers.memoryJobs,
    schema: MemoryJob,
    concurrency: config.jobConcurrency,
    maxDeliver: 6,
    backoff: { initialMs: config.jobRetryMs, maxMs: Math.max(config.jobRetryMs, 60_000) },
    ackWaitMs: 60_000,
    deadLetterOrigin: "memory-jobs",
    handler: async (job, { deliveryCount }) => {
      try {
        if (job.kind === "summarize") {
          await summarizer.summarize(
            job.tenant,
            job.threadId,
            jobMeta(job.tenant, `summarize:${job.threadId}:${job.requestedAt}`),
          );
        } else {
          const embedded = await knowledge.index(
            job.tenant,
            job.documentId,
            jobMeta(job.tenant, `index:${job.documentId}:${job.requestedAt}`),
          );
          if (embedded > 0) await cache.clear(job.tenant);
        }
        jobs.inc({ kind: job.kind, outcome: "done" });
      } catch (error) {
        jobs.inc({ kind: job.kind, outcome: "failed" });
        logger.warn({ err: error, job, deliveryCount }, "memory job failed; it will be retried");
        throw error;
      }
    },
  });

  context.onStop(() => Promise.all([consumer.stop(), turns.stop()]).then(() => undefined));
  const ops = await context.startOps();
  const vectorSearch = pgvector ? "pgvector" : "signatures";
  await context.announce([`vector search ${vectorSearch}`], { vectorSearch });
  return { bus, vectorSearch, opsPort: ops.port, stop: () => context.stop() };
}
