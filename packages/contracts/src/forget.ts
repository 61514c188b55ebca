import { z } from "zod";
import { Id, RequestMeta } from "./common.js";
import { StorableString } from "./storable.js";

/**
 * Forgetting a thread or an end user, across the services that hold what they said: the
 * orchestrator's runs, steps and run events (`run.forget`), the model proxy's caches
 * (`model.forget`), the tool executor's records and result caches (`tool.forget`) and memory
 * (`memory.forget`). Every call is idempotent: asking again forgets nothing more and is harmless.
 */

/** Runs forgotten per `run.forget` call at most; the caller asks again while `more` is true. */
export const FORGET_RUN_BATCH = 200;

const UserId = StorableString.min(1).max(200);
const ThreadId = StorableString.min(1).max(200);

export const RunForgetRequest = z
  .object({
    meta: RequestMeta,
    /** Runs of these threads (and the runs they delegated to). */
    threadIds: z.array(ThreadId).max(1000).default([]),
    /** Runs of this end user (and the runs they delegated to). */
    userId: UserId.optional(),
  })
  .refine((value) => value.threadIds.length > 0 || value.userId !== undefined, {
    message: "name threadIds or a userId to forget",
    path: ["threadIds"],
  });
export type RunForgetRequest = z.infer<typeof RunForgetRequest>;

export const RunForgetReply = z.object({
  /** Runs scrubbed by this call (their rows stay, with totals and status but no content). */
  runs: z.number().int().nonnegative(),
  /** Steps scrubbed. */
  steps: z.number().int().nonnegative(),
  /** Runs that were still queued or running and were cancelled first. */
  cancelled: z.number().int().nonnegative(),
  /** The threads those runs belonged to. */
  threadIds: z.array(z.string()),
  /** Whether more runs of the target are left: ask again. */
  more: z.boolean(),
});
export type RunForgetReply = z.infer<typeof RunForgetReply>;

/** sha256 of a text, hex: how embedding caches name what they hold. */
const TextHash = z.string().regex(/^[0-9a-f]{64}$/, "a sha256 hex digest");

export const ModelForgetRequest = z.object({
  meta: RequestMeta,
  /** Idempotency records of these runs' model calls. */
  runIds: z.array(Id).max(1000).default([]),
  /** Cached responses and embeddings of requests made for these end users ("" = made without one). */
  userIds: z
    .array(z.union([UserId, z.literal("")]))
    .max(1000)
    .default([]),
  /** Idempotency records of these threads' summaries. */
  threadIds: z.array(ThreadId).max(1000).default([]),
  /** Cached embeddings of these texts (sha256 of the text), whoever asked. */
  textHashes: z.array(TextHash).max(10_000).default([]),
});
export type ModelForgetRequest = z.infer<typeof ModelForgetRequest>;

export const ModelForgetReply = z.object({
  deleted: z.object({
    responses: z.number().int().nonnegative(),
    idempotency: z.number().int().nonnegative(),
    embeddings: z.number().int().nonnegative(),
  }),
});
export type ModelForgetReply = z.infer<typeof ModelForgetReply>;

export const ToolForgetRequest = z.object({
  meta: RequestMeta,
  /** Idempotency records (with their replies) of these runs' tool calls. */
  runIds: z.array(Id).max(1000).default([]),
  /** Cached results kept for these end users ("" = the requests made without one). */
  userIds: z
    .array(z.union([UserId, z.literal("")]))
    .max(1000)
    .default([]),
  /**
   * The tools whose cached results go: those of the users above, and the tenant-wide ones
   * (tools that are not personal). Absent: every tool, for the users above only.
   */
  tools: z
    .array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/))
    .max(500)
    .optional(),
});
export type ToolForgetRequest = z.infer<typeof ToolForgetRequest>;

export const ToolForgetReply = z.object({
  deleted: z.object({
    records: z.number().int().nonnegative(),
    cached: z.number().int().nonnegative(),
  }),
});
export type ToolForgetReply = z.infer<typeof ToolForgetReply>;
