import { z } from "zod";

export const TenantLimits = z.object({
  requestsPerMinute: z.number().int().positive().optional(),
  userRequestsPerMinute: z.number().int().positive().optional(),
  concurrentRuns: z.number().int().positive().optional(),
  tokensPerDay: z.number().int().positive().optional(),
  costPerMonthUsd: z.number().positive().optional(),
});
export type TenantLimits = z.infer<typeof TenantLimits>;

export const LimitsSection = z.object({
  limits: z
    .object({
      defaults: TenantLimits.default({}),
      tenants: z.record(z.string(), TenantLimits).default({}),
      global: z.object({ requestsPerMinute: z.number().int().positive().optional() }).default({}),
      queues: z
        .object({
          interactiveMaxDepth: z.number().int().positive().default(1000),
          batchMaxDepth: z.number().int().positive().default(100_000),
        })
        .default({ interactiveMaxDepth: 1000, batchMaxDepth: 100_000 }),
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
      queues: { interactiveMaxDepth: 1000, batchMaxDepth: 100_000 },
      maxBodyBytes: 1024 * 1024,
    }),
});
export type LimitsSection = z.infer<typeof LimitsSection>;
