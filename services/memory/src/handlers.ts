import type { Bus } from "@agent-runtime/bus";
import {
  Endpoints,
  lastUserText,
  type MemoryAppendReply,
  type MemoryAppendRequest,
  type MemoryContextReply,
  type MemoryContextRequest,
  type MemoryForgetReply,
  type MemoryForgetRequest,
  type MemoryHit,
  MemoryJob,
  type MemoryListRequest,
  type MemoryMessagesReply,
  type MemoryMessagesRequest,
  type MemoryRememberReply,
  type MemoryRememberRequest,
  type MemorySearchReply,
  type MemorySearchRequest,
  RuntimeError,
  Subjects,
} from "@agent-runtime/contracts";
import type { Logger, Metrics } from "@agent-runtime/telemetry";
import type pg from "pg";
import { assembleContext, type ContextShares } from "./context.js";
import { chunkTextHashes, forgetRows } from "./forget.js";
import type { Knowledge } from "./knowledge.js";
import { listDocuments } from "./list-documents.js";
import type { HybridSearch } from "./search.js";
import type { SearchCache } from "./search-cache.js";
import type { ThreadStore } from "./thread-store.js";
import type { ThreadTurns } from "./thread-turns.js";

export interface HandlerDeps {
  bus: Bus;
  pool: pg.Pool;
  threads: ThreadStore;
  knowledge: Knowledge;
  hybrid: HybridSearch;
  cache: SearchCache;
  metrics: Metrics;
  logger: Logger;
  /** Journaled turns not yet stored: a read of a thread stores them first. */
  turns: Pick<ThreadTurns, "catchUp" | "discard">;
  settings: {
    summarizeAfterTokens: number;
    retrievalLimit: number;
    shares: ContextShares;
  };
}

/** Embedding hashes per `model.forget` request. */
const FORGET_HASH_BATCH = 5000;
/** Thread ids a forget answers at most. */
const MAX_FORGOTTEN_THREAD_IDS = 5000;

/** Connection failures the pg client reports without a code. */
const LOST_CONNECTION = /connection terminated|timeout exceeded when trying to connect|connection error/i;

/**
 * PostgreSQL unreachable or shutting down: the caller may retry elsewhere; data it refuses (SQLSTATE
 * classes 22, 23): the caller's request is at fault and a retry cannot help.
 */
function databaseUnavailable(error: unknown): never {
  const code = (error as { code?: string } | null)?.code ?? "";
  if (/^(22|23)/.test(code))
    throw new RuntimeError("validation", `the memory store refused the data: ${(error as Error).message}`, {
      retryable: false,
      cause: error,
    });
  if (
    (!code && error instanceof Error && LOST_CONNECTION.test(error.message)) ||
    code === "ECONNREFUSED" ||
    code === "ECONNRESET" ||
    code === "ETIMEDOUT" ||
    code.startsWith("08") ||
    code === "57P01" ||
    code === "57P03" ||
    code === "53300"
  )
    throw new RuntimeError("unavailable", "the memory database is unavailable", { cause: error });
  throw error;
}

const guarded =
  <A extends unknown[], R>(handler: (...args: A) => Promise<R>) =>
  (...args: A): Promise<R> =>
    handler(...args).catch(databaseUnavailable);

/** The request/reply handlers of the memory service. */
export function createHandlers(deps: HandlerDeps) {
  const { bus, pool, threads, turns, knowledge, hybrid, cache, metrics, logger, settings } = deps;
  const contextSeconds = metrics.histogram("memory_context_seconds", "memory.context latency", ["source"]);
  const searchSeconds = metrics.histogram("memory_search_seconds", "memory.search latency", ["cached"]);
  const appended = metrics.counter("memory_messages_appended_total", "messages stored", ["outcome"]);

  const search = async (request: MemorySearchRequest): Promise<MemorySearchReply> => {
    const started = performance.now();
    const lookup = await cache.get(request);
    if (lookup.hits) {
      searchSeconds.observe({ cached: "true" }, (performance.now() - started) / 1000);
      return { hits: lookup.hits, cached: true };
    }
    const outcome = await hybrid.search(request);
    // a keyword-only answer (embeddings unavailable) is not worth keeping
    if (outcome.semantic) await cache.put(request, lookup.epoch, outcome.hits);
    searchSeconds.observe({ cached: "false" }, (performance.now() - started) / 1000);
    return { hits: outcome.hits, cached: false };
  };

  const queueJob = async (job: MemoryJob, msgId: string): Promise<void> => {
    await bus.publishDurable(Subjects.memoryJobs, MemoryJob, job, { msgId });
  };

  const context = async (request: MemoryContextRequest): Promise<MemoryContextReply> => {
    const started = performance.now();
    const tenant = request.meta.tenant;
    const userId = request.userId ?? request.meta.userId;
    const query = request.retrieval ? lastUserText(request.input).slice(0, 4000) : "";
    // thread state and retrieval at once: one Redis round trip plus the search, in parallel
    const threadId = request.threadId;
    const [state, retrieved] = await Promise.all([
      threadId
        ? turns.catchUp(tenant, threadId).then(() => threads.state(tenant, threadId))
        : Promise.resolve({
            found: false,
            summary: null,
            summaryTokens: 0,
            messages: [],
            older: 0,
            hot: false,
          }),
      query.trim()
        ? search({
            meta: request.meta,
            query,
            ...(userId ? { userId } : {}),
            scope: request.scope,
            limit: settings.retrievalLimit,
          })
            .then((result) => result.hits)
            .catch((error: unknown): MemoryHit[] => {
              logger.warn({ err: error, tenant }, "retrieval failed; context without memories");
              return [];
            })
        : Promise.resolve([] as MemoryHit[]),
    ]);
    const reply = assembleContext(request, state, retrieved, settings.shares);
    const source = state.hot ? "redis" : request.threadId ? "postgres" : "none";
    contextSeconds.observe({ source }, (performance.now() - started) / 1000);
    return reply;
  };

  /** `gatherMs`: how long the write may wait for other appends to share it (see ThreadAppends). */
  const append = async (
    request: MemoryAppendRequest,
    options: { gatherMs?: number } = {},
  ): Promise<MemoryAppendReply> => {
    const tenant = request.meta.tenant;
    const userId = request.userId ?? request.meta.userId;
    const result = await threads.append(
      tenant,
      request.threadId,
      request.messages,
      {
        ...(userId ? { userId } : {}),
        ...(request.agent ? { agent: request.agent } : {}),
      },
      options,
    );
    appended.inc({ outcome: "stored" }, result.appended);
    appended.inc({ outcome: "skipped" }, result.skipped);
    if (result.appended > 0 && result.historyTokens > settings.summarizeAfterTokens) {
      // one job per threshold multiple per summary generation (JetStream drops duplicates); never awaited
      const step = Math.floor(result.historyTokens / settings.summarizeAfterTokens);
      queueJob(
        { kind: "summarize", tenant, threadId: request.threadId, requestedAt: Date.now() },
        `summarize:${tenant}:${request.threadId}:${result.summaryUpto}:${step}`,
      ).catch((error: unknown) => logger.warn({ err: error, tenant }, "summary job not queued"));
    }
    return { appended: result.appended, skipped: result.skipped };
  };

  const messages = async (request: MemoryMessagesRequest): Promise<MemoryMessagesReply> => {
    await turns.catchUp(request.meta.tenant, request.threadId);
    const result = await threads.list(request.meta.tenant, request.threadId, request.limit, request.before);
    return { threadId: request.threadId, found: result.found, messages: result.messages };
  };

  const remember = async (request: MemoryRememberRequest): Promise<MemoryRememberReply> => {
    const tenant = request.meta.tenant;
    const result = await knowledge.remember(request);
    await cache.clear(tenant);
    if (result.pending > 0) {
      try {
        await queueJob(
          { kind: "index", tenant, documentId: result.documentId, requestedAt: Date.now() },
          `index:${tenant}:${result.documentId}:${Date.now()}`,
        );
      } catch (error) {
        // stored, but not yet embedded: the caller retries and the retry queues the job
        throw new RuntimeError("unavailable", "stored the document but could not queue its indexing", {
          cause: error,
          retryAfterMs: 1000,
        });
      }
    }
    return { documentId: result.documentId, chunks: result.chunks, queued: result.pending > 0 };
  };

  const forget = async (request: MemoryForgetRequest): Promise<MemoryForgetReply> => {
    const tenant = request.meta.tenant;
    // turns journaled for a thread and not yet stored would bring it back: dropped before and after
    if (request.threadId) await turns.discard(tenant, [request.threadId]);
    // the model proxy's cached embeddings of the chunks go before the chunks (a retry finds them)
    const hashes = await chunkTextHashes(pool, tenant, request);
    for (let start = 0; start < hashes.length; start += FORGET_HASH_BATCH)
      await bus.request(Endpoints.modelForget, {
        meta: { ...request.meta, requestId: `${request.meta.requestId}:embeddings:${start}` },
        textHashes: hashes.slice(start, start + FORGET_HASH_BATCH),
      });
    const { deleted, threadIds } = await forgetRows(pool, tenant, request);
    await turns.discard(tenant, threadIds);
    await Promise.all(threadIds.map((threadId) => threads.invalidate(tenant, threadId)));
    // cached searches may hold the deleted text
    if (deleted.chunks > 0 || deleted.documents > 0) await cache.clear(tenant);
    logger.info({ tenant, deleted }, "forgot");
    // the ids fit one reply (NATS bounds its size); counts are whole
    return { deleted, threadIds: threadIds.slice(0, MAX_FORGOTTEN_THREAD_IDS) };
  };

  return {
    context: guarded(context),
    append: guarded(append),
    messages: guarded(messages),
    search: guarded(search),
    remember: guarded(remember),
    forget: guarded(forget),
    list: guarded((request: MemoryListRequest) => listDocuments(pool, request)),
  };
}
