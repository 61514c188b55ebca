import { z } from "zod";
import { TokenUsage } from "./common.js";

/** Who used what, when: common to every usage record. */
const UsageBase = z.object({
  v: z.literal(1).default(1),
  id: z.string(),
  ts: z.number(),
  tenant: z.string(),
  userId: z.string().optional(),
  runId: z.string().optional(),
  agent: z.string().optional(),
});

export const ModelUsageRecord = UsageBase.extend({
  requestId: z.string(),
  kind: z.enum(["chat", "embed"]),
  route: z.string(),
  routeReason: z.string(),
  tier: z.string(),
  variant: z.string().optional(),
  model: z.string(),
  provider: z.string(),
  usage: TokenUsage,
  usageEstimated: z.boolean(),
  costUsd: z.number().nonnegative(),
  /** The model has a price: `false` means `costUsd` is 0 because the cost is unknown, not free. */
  priced: z.boolean().optional(),
  /**
   * USD the provider's prompt cache saved on this call: its `usage.cachedTokens` at the model's
   * input price less its cached-input price. Absent (records before it, or nothing cached) is 0.
   */
  promptCacheSavedUsd: z.number().nonnegative().optional(),
  latencyMs: z.number().nonnegative(),
  ttftMs: z.number().nonnegative().optional(),
  retries: z.number().int().nonnegative(),
  fallbacks: z.number().int().nonnegative(),
  cached: z.boolean(),
  status: z.enum(["ok", "error"]),
  errorCode: z.string().optional(),
});
export type ModelUsageRecord = z.infer<typeof ModelUsageRecord>;

export const ToolUsageRecord = UsageBase.extend({
  tool: z.string(),
  callId: z.string(),
  status: z.string(),
  latencyMs: z.number().nonnegative(),
  cached: z.boolean(),
  replayed: z.boolean().default(false),
  costUsd: z.number().nonnegative(),
});
export type ToolUsageRecord = z.infer<typeof ToolUsageRecord>;
