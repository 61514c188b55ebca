import { z } from "zod";

export const WebhookToolConfig = z.object({
  description: z.string(),
  url: z.string().url(),
  method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]).default("POST"),
  /** Header name → environment variable holding its value. */
  headersFromEnv: z.record(z.string(), z.string()).default({}),
  /** JSON Schema of the arguments the model sends. */
  parameters: z.record(z.string(), z.unknown()).default({ type: "object", properties: {} }),
  timeoutMs: z.number().int().positive().default(10_000),
  sideEffects: z.boolean().default(true),
  cacheTtlSeconds: z.number().int().nonnegative().default(0),
  cooldownSeconds: z.number().int().nonnegative().default(0),
  maxConcurrency: z.number().int().positive().default(16),
  costUsd: z.number().nonnegative().default(0),
  maxResponseBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  /** Internal webhooks (private addresses) must be trusted explicitly. */
  allowPrivateNetwork: z.boolean().default(false),
});
export type WebhookToolConfig = z.infer<typeof WebhookToolConfig>;

export const ToolsSection = z.object({
  tools: z
    .object({
      webhooks: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), WebhookToolConfig).default({}),
      /** Per-tool option overrides for built-ins (timeoutMs, cacheTtlSeconds, cooldownSeconds, maxConcurrency). */
      overrides: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
      /** Hosts or CIDRs that HTTP tools may reach even though they are private. */
      allowPrivateNetworks: z.array(z.string()).default([]),
      /** Tool policy per tenant or channel: which tools may be offered. */
      policies: z
        .array(
          z.object({
            tenant: z.string().optional(),
            channel: z.string().optional(),
            agent: z.string().optional(),
            allow: z.array(z.string()).optional(),
            deny: z.array(z.string()).default([]),
          }),
        )
        .default([]),
    })
    .default({ webhooks: {}, overrides: {}, allowPrivateNetworks: [], policies: [] }),
});
export type ToolsSection = z.infer<typeof ToolsSection>;
