import { z } from "zod";

export const MESSAGE_VERSION = 1 as const;

export const Id = z.string().min(1).max(200);
export const TenantId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, "tenant ids are letters, digits, '_' and '-'");
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
