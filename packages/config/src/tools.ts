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
  /** Results may differ per user: cached per user (`false`: per tenant, shared by its users). */
  personal: z.boolean().default(true),
});
export type WebhookToolConfig = z.infer<typeof WebhookToolConfig>;

/** Every policy whose fields all match a call applies: a `deny` listing the tool, or an `allow` not listing it, refuses it. */
export const ToolPolicy = z.object({
  tenant: z.string().optional(),
  channel: z.string().optional(),
  agent: z.string().optional(),
  allow: z.array(z.string()).optional(),
  deny: z.array(z.string()).default([]),
});
export type ToolPolicy = z.infer<typeof ToolPolicy>;

export interface ToolPolicyContext {
  tenant?: string | undefined;
  agent?: string | undefined;
  channel?: string | undefined;
}

/** Whether the policies let `name` be offered to and called in `context`. */
export function toolPolicyAllows(
  policies: readonly ToolPolicy[],
  name: string,
  context: ToolPolicyContext,
): boolean {
  for (const policy of policies) {
    if (policy.tenant && policy.tenant !== context.tenant) continue;
    if (policy.channel && policy.channel !== context.channel) continue;
    if (policy.agent && policy.agent !== context.agent) continue;
    if (policy.deny.includes(name)) return false;
    if (policy.allow && !policy.allow.includes(name)) return false;
  }
  return true;
}

export const ToolsSection = z.object({
  tools: z
    .object({
      webhooks: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), WebhookToolConfig).default({}),
      /** Per-tool option overrides for built-ins (timeoutMs, cacheTtlSeconds, cooldownSeconds, maxConcurrency). */
      overrides: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
      /** Hosts or CIDRs that HTTP tools may reach even though they are private. */
      allowPrivateNetworks: z.array(z.string()).default([]),
      /**
       * Tool policies per tenant, channel (`chat`, `runs`, `events`) and agent: which tools may be
       * offered and called. Checked when tools are listed and again by the executor for every call.
       */
      policies: z.array(ToolPolicy).default([]),
    })
    .default({ webhooks: {}, overrides: {}, allowPrivateNetworks: [], policies: [] }),
});
export type ToolsSection = z.infer<typeof ToolsSection>;
