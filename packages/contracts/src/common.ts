import { z } from "zod";

export const MESSAGE_VERSION = 1 as const;

export const Id = z.string().min(1).max(200);
export const TenantId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, "tenant ids are letters, digits, '_' and '-'");
export type TenantId = z.infer<typeof TenantId>;

/** Carried by every request between services (DESIGN rule 5). */
export const RequestMeta = z.object({
  v: z.literal(MESSAGE_VERSION).default(MESSAGE_VERSION),
  tenant: TenantId,
  requestId: Id,
  runId: Id.optional(),
  userId: z.string().max(200).optional(),
  threadId: Id.optional(),
  agent: z.string().max(100).optional(),
  /** Epoch milliseconds after which the caller no longer waits. */
  deadline: z.number().int().positive(),
});
export type RequestMeta = z.infer<typeof RequestMeta>;

export const TokenUsage = z.object({
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  cachedTokens: z.number().int().nonnegative().default(0),
  totalTokens: z.number().int().nonnegative(),
});
export type TokenUsage = z.infer<typeof TokenUsage>;
