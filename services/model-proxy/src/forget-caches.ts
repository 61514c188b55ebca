import type { Bus } from "@agent-runtime/bus";
import {
  Endpoints,
  type ModelForgetReply,
  type ModelForgetRequest,
  QueueGroups,
  RuntimeError,
} from "@agent-runtime/contracts";
import { deleteScanned, globEscape, type Redis, redisReady } from "@agent-runtime/stores";
import type { Logger } from "@agent-runtime/telemetry";
import { userTag } from "./caches.js";

/**
 * `model.forget`: drops what the model proxy keeps of some runs, threads or end users in Redis:
 * - cached responses (`mcache:<tenant>:<userTag>:<hash>`) of the users named ("" = the requests
 *   made without one: a thread's summaries among them);
 * - cached embeddings (`emb:<tenant>:<userTag>:<model>:<textHash>`) of those users, and of the
 *   texts named by hash (a forgotten document's chunks, embedded for nobody);
 * - idempotency records (`midem:<tenant>:<requestId>`, a reply kept for a resumed call) of the
 *   runs named (their calls' request ids start with the run id) and of the threads named (a
 *   summary's request id holds its thread's id).
 * Entries are not keyed by thread (a chat turn without one gets a new thread each time, and would
 * never hit): a thread's cached answers go with all of its users' (a cache: only misses follow).
 * Each family is one incremental SCAN of the tenant's keys. Redis down: `unavailable` (retryable),
 * never a success that left the entries to come back with Redis.
 */
export async function forgetModelCaches(
  redis: Redis,
  prefix: string,
  request: ModelForgetRequest,
): Promise<ModelForgetReply> {
  if (!redisReady(redis))
    throw new RuntimeError("unavailable", "the model caches cannot be reached to forget; retry shortly", {
      retryAfterMs: 1000,
    });
  const tenant = request.meta.tenant;
  const users = new Set(request.userIds.map((userId) => userTag(userId || undefined)));
  const hashes = new Set(request.textHashes);
  try {
    const responsePrefix = `${prefix}mcache:${tenant}:`;
    const responses =
      users.size === 0
        ? 0
        : await deleteScanned(redis, `${globEscape(responsePrefix)}*`, (key) =>
            users.has(key.slice(responsePrefix.length).split(":")[0] ?? ""),
          );
    const embeddingPrefix = `${prefix}emb:${tenant}:`;
    const embeddings =
      users.size + hashes.size === 0
        ? 0
        : await deleteScanned(redis, `${globEscape(embeddingPrefix)}*`, (key) => {
            const parts = key.slice(embeddingPrefix.length).split(":");
            return users.has(parts[0] ?? "") || hashes.has(parts.at(-1) ?? "");
          });
    const idempotencyPrefix = `${prefix}midem:${tenant}:`;
    const runPrefixes = request.runIds.map((runId) => `${runId}:`);
    const runIds = new Set(request.runIds);
    const threadParts = request.threadIds.map((threadId) => `:${threadId}:`);
    const idempotency =
      runIds.size + threadParts.length === 0
        ? 0
        : await deleteScanned(redis, `${globEscape(idempotencyPrefix)}*`, (key) => {
            const requestId = key.slice(idempotencyPrefix.length);
            return (
              runIds.has(requestId) ||
              runPrefixes.some((runPrefix) => requestId.startsWith(runPrefix)) ||
              threadParts.some((part) => requestId.includes(part))
            );
          });
    return { deleted: { responses, idempotency, embeddings } };
  } catch (error) {
    if (error instanceof RuntimeError) throw error;
    throw new RuntimeError("unavailable", "the model caches failed while forgetting; retry shortly", {
      retryAfterMs: 1000,
      cause: error,
    });
  }
}

/** Serves `model.forget` in the model proxy's queue group, a few at a time. */
export function serveModelForget(
  bus: Bus,
  redis: Redis,
  prefix: string,
  logger: Logger,
  maxInFlight = 4,
): void {
  bus.serve(
    Endpoints.modelForget,
    async (request) => {
      const reply = await forgetModelCaches(redis, prefix, request);
      logger.info({ tenant: request.meta.tenant, deleted: reply.deleted }, "forgot model caches");
      return reply;
    },
    { queue: QueueGroups.modelProxy, maxInFlight },
  );
}
