import { z } from "zod";

export const TenantLimits = z.object({
  requestsPerMinute: z.number().int().positive().optional(),
  userRequestsPerMinute: z.number().int().positive().optional(),
  concurrentRuns: z.number().int().positive().optional(),
  /** Concurrent runs of one end user (`user` in the request) inside a tenant. */
  userConcurrentRuns: z.number().int().positive().optional(),
  tokensPerDay: z.number().int().positive().optional(),
  costPerMonthUsd: z.number().positive().optional(),
  /** Quotas of one end user inside a tenant (from usage records that carry the user). */
  userTokensPerDay: z.number().int().positive().optional(),
  userCostPerMonthUsd: z.number().positive().optional(),
});
export type TenantLimits = z.infer<typeof TenantLimits>;

/**
 * What happens to batch runs when the batch queue is deeper than its bound:
 * `shed` answers 429 with Retry-After; `queue` still accepts them (JetStream
 * holds them durably) up to `batchHardMaxDepth`, past which they are shed.
 */
export const BatchOverflowPolicy = z.enum(["shed", "queue"]);
export type BatchOverflowPolicy = z.infer<typeof BatchOverflowPolicy>;

const QUEUE_DEFAULTS = {
  interactiveMaxDepth: 1000,
  batchMaxDepth: 100_000,
  batchOverflow: "shed" as const,
  batchHardMaxDepth: 1_000_000,
};

export const LimitsSection = z.object({
  limits: z
    .object({
      defaults: TenantLimits.default({}),
      tenants: z.record(z.string(), TenantLimits).default({}),
      global: z
        .object({
          requestsPerMinute: z.number().int().positive().optional(),
          concurrentRuns: z.number().int().positive().optional(),
          tokensPerDay: z.number().int().positive().optional(),
          costPerMonthUsd: z.number().positive().optional(),
        })
        .default({}),
      queues: z
        .object({
          interactiveMaxDepth: z.number().int().positive().default(QUEUE_DEFAULTS.interactiveMaxDepth),
          batchMaxDepth: z.number().int().positive().default(QUEUE_DEFAULTS.batchMaxDepth),
          batchOverflow: BatchOverflowPolicy.default(QUEUE_DEFAULTS.batchOverflow),
          batchHardMaxDepth: z.number().int().positive().default(QUEUE_DEFAULTS.batchHardMaxDepth),
        })
        .default(QUEUE_DEFAULTS),
      maxBodyBytes: z
        .number()
        .int()
        .positive()
        .default(1024 * 1024),
    })
    .default({
      defaults: {},
      tenants: {},
      global: {},
      queues: QUEUE_DEFAULTS,
      maxBodyBytes: 1024 * 1024,
    }),
});
export type LimitsSection = z.infer<typeof LimitsSection>;
