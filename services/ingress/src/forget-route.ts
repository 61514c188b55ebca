import {
  Endpoints,
  type MemoryForgetReply,
  type RunForgetReply,
  RuntimeError,
  StorableString,
} from "@agent-runtime/contracts";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { parseBody } from "./http-errors.js";
import type { RouteDeps } from "./route-deps.js";
import { idParam, metaFor } from "./runs-route.js";

/** Each step of a forget may take a while (a user with many runs): its own generous deadline. */
const STEP_TIMEOUT_MS = 60_000;
/** Threads named per `run.forget` request. */
const THREADS_PER_CALL = 500;
/** A bound on `run.forget` rounds (FORGET_RUN_BATCH runs each) in one HTTP request. */
const MAX_ROUNDS = 500;

const UserParams = z.object({ id: StorableString.min(1).max(200) });

export interface Forgotten {
  runs: number;
  steps: number;
  cancelled: number;
  threads: number;
  messages: number;
  documents: number;
  chunks: number;
}

const nothing = (): Forgotten => ({
  runs: 0,
  steps: 0,
  cancelled: 0,
  threads: 0,
  messages: 0,
  documents: 0,
  chunks: 0,
});

/** Asks `run.forget` until no run of the target is left; returns the totals and the runs' threads. */
async function forgetRuns(
  deps: RouteDeps,
  tenant: string,
  target: { threadIds: string[]; userId?: string },
  total: Forgotten,
): Promise<Set<string>> {
  const threads = new Set<string>();
  const forgetRounds = async (threadIds: string[]) => {
    for (let round = 0; ; round++) {
      const reply: RunForgetReply = await deps.bus.request(Endpoints.runForget, {
        meta: metaFor(tenant, STEP_TIMEOUT_MS),
        threadIds,
        ...(target.userId ? { userId: target.userId } : {}),
      });
      total.runs += reply.runs;
      total.steps += reply.steps;
      total.cancelled += reply.cancelled;
      for (const threadId of reply.threadIds) threads.add(threadId);
      if (!reply.more) return;
      if (round >= MAX_ROUNDS)
        throw new RuntimeError("unavailable", "forgetting is not finished yet; send the request again", {
          retryAfterMs: 1000,
        });
    }
  };
  if (target.threadIds.length === 0) await forgetRounds([]);
  for (let start = 0; start < target.threadIds.length; start += THREADS_PER_CALL)
    await forgetRounds(target.threadIds.slice(start, start + THREADS_PER_CALL));
  return threads;
}

async function forgetMemory(
  deps: RouteDeps,
  tenant: string,
  target: { threadId: string } | { userId: string },
  total: Forgotten,
): Promise<MemoryForgetReply> {
  const reply = await deps.bus.request(Endpoints.memoryForget, {
    meta: metaFor(tenant, STEP_TIMEOUT_MS),
    ...target,
  });
  total.threads += reply.deleted.threads;
  total.messages += reply.deleted.messages;
  total.documents += reply.deleted.documents;
  total.chunks += reply.deleted.chunks;
  return reply;
}

/**
 * Forgets a thread: its runs first (cancelled if still going, so that nothing new is said while it
 * is forgotten; then scrubbed, with their events, model and tool records and caches), then its
 * messages and summary in memory. Each step is idempotent: a failed forget is sent again.
 */
export async function forgetThread(deps: RouteDeps, tenant: string, threadId: string): Promise<Forgotten> {
  const total = nothing();
  await forgetRuns(deps, tenant, { threadIds: [threadId] }, total);
  await forgetMemory(deps, tenant, { threadId }, total);
  return total;
}

/**
 * Forgets an end user of the tenant: their runs (and everything of those runs, as for a thread,
 * their threads' turns still on their way to memory included), their threads, long-term memories,
 * documents and profile in memory, and what the model proxy and tool executor cached for them.
 * Runs made without the user in the user's threads go too. The usage totals and rollups kept
 * of the user no longer name them.
 */
export async function forgetUser(deps: RouteDeps, tenant: string, userId: string): Promise<Forgotten> {
  const total = nothing();
  const runThreads = await forgetRuns(deps, tenant, { threadIds: [], userId }, total);
  const memory = await forgetMemory(deps, tenant, { userId }, total);
  const withoutUser = memory.threadIds.filter((threadId) => !runThreads.has(threadId));
  if (withoutUser.length > 0) await forgetRuns(deps, tenant, { threadIds: withoutUser }, total);
  // what stays of the user is counted, not named
  await deps.forgetUsage(tenant, userId);
  return total;
}

/**
 * `DELETE /v1/threads/:id` and `DELETE /v1/users/:id`: forgetting, within the key's tenant. What
 * stays has no content: run rows with status and totals, usage totals.
 */
export function registerForgetRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.delete("/v1/threads/:id", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const threadId = idParam(request.params);
    const forgotten = await forgetThread(deps, key.tenant, threadId);
    if (forgotten.threads === 0 && forgotten.runs === 0)
      throw new RuntimeError("not_found", `no thread ${threadId}`, { retryable: false });
    return { id: threadId, object: "thread", deleted: true, ...forgotten };
  });

  app.delete("/v1/users/:id", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const { id: userId } = parseBody(UserParams, request.params);
    await deps.limit(key.tenant, undefined);
    const forgotten = await forgetUser(deps, key.tenant, userId);
    if (Object.values(forgotten).every((count) => count === 0))
      throw new RuntimeError("not_found", `nothing is stored of user ${userId}`, { retryable: false });
    return { id: userId, object: "user", deleted: true, ...forgotten };
  });
}
