import { z } from "zod";

export const MESSAGE_VERSION = 1 as const;

export const Id = z.string().min(1).max(200);
/** A tenant id: 1-64 letters, digits, `_` or `-`. */
export const TENANT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** An id a caller may choose (request, run, thread): 1-200 letters, digits, `_`, `.`, `:` or `-`. */
export const ID_PATTERN = idPattern(200);

/** Ids of 1 to `max` letters, digits, `_`, `.`, `:` or `-` (memory ids take 100). */
export function idPattern(max: number): RegExp {
  if (!Number.isInteger(max) || max < 1)
    throw new RangeError(`an id's length limit is a positive integer, not ${max}`);
  return new RegExp(`^[A-Za-z0-9_.:-]{1,${max}}$`);
}

export const TenantId = z
  .string()
  .regex(TENANT_ID_PATTERN, "tenant ids are 1-64 letters, digits, '_' and '-'");
export type TenantId = z.infer<typeof TenantId>;

/**
 * Which lane a request travels in: `interactive` (someone is waiting: chat,
 * `wait` runs) or `batch` (events, background runs). Services keep a share of
 * every bound for interactive work and serve it first. Same values as a run's
 * `priority`.
 */
export const Priority = z.enum(["interactive", "batch"]);
export type Priority = z.infer<typeof Priority>;

/** Carried by every request between services (DESIGN rule 5). */
export const RequestMeta = z.object({
  v: z.literal(MESSAGE_VERSION).default(MESSAGE_VERSION),
  tenant: TenantId,
  requestId: Id,
  runId: Id.optional(),
  userId: z.string().max(200).optional(),
  threadId: Id.optional(),
  agent: z.string().max(100).optional(),
  /** The lane of the run this request serves; absent means `interactive`. */
  priority: Priority.optional(),
  /** Epoch milliseconds after which the caller no longer waits. */
  deadline: z.number().int().positive(),
});
export type RequestMeta = z.infer<typeof RequestMeta>;

/** A request's lane: its `meta.priority`, `interactive` when absent. */
export function priorityOf(meta: { priority?: Priority | undefined }): Priority {
  return meta.priority ?? "interactive";
}

export const TokenUsage = z.object({
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  cachedTokens: z.number().int().nonnegative().default(0),
  totalTokens: z.number().int().nonnegative(),
});
export type TokenUsage = z.infer<typeof TokenUsage>;
