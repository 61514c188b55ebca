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
  /**
   * The webhook applies each `Idempotency-Key` header once (answering a repeat with its first
   * result): a call whose outcome is unknown, because its executor stopped between claiming the
   * key and hearing back, is then sent again under the same key instead of being reported unknown.
   */
  idempotentByKey: z.boolean().default(false),
});
export type WebhookToolConfig = z.infer<typeof WebhookToolConfig>;

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * An MCP server whose tools the executor offers and runs: a local process spoken to over stdio
 * (`command`, `args`, `env`, `cwd`) or a Streamable HTTP endpoint (`url`, `headers`). Its tools run
 * under the same timeouts, limits, cache, policies, idempotency and accounting as any other tool.
 */
export const McpServerConfig = z
  .object({
    command: z.string().min(1).optional(),
    args: z.array(z.string()).default([]),
    /** Variables for the server process, over a minimal inherited set (PATH, HOME, …). */
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
    url: z.string().url().optional(),
    /** Literal headers for a Streamable HTTP server (`${VAR}` interpolation applies). */
    headers: z.record(z.string(), z.string()).default({}),
    /** Header name → environment variable holding its value. */
    headersFromEnv: z.record(z.string(), z.string()).default({}),
    /** The server's tools to offer (by the server's own names); absent = all of them. */
    tools: z.array(z.string()).optional(),
    /** Put before each tool's name (e.g. `github_`), so two servers' tools cannot collide. */
    toolPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]{0,32}$/)
      .default(""),
    /** Time limit of one call of any of its tools. */
    timeoutMs: z.number().int().positive().default(30_000),
    /** Time to connect and list its tools; past it the executor starts without them and retries. */
    connectTimeoutMs: z.number().int().positive().default(10_000),
    maxConcurrency: z.number().int().positive().default(16),
    /** Whether its tools act on the world; absent = from each tool's `readOnlyHint` annotation. */
    sideEffects: z.boolean().optional(),
    /** Results of read-only tools are cached this long (0 = never). */
    cacheTtlSeconds: z.number().int().nonnegative().default(0),
    cooldownSeconds: z.number().int().nonnegative().default(0),
    costUsd: z.number().nonnegative().default(0),
    /** Results may differ per user: cached per user (`false`: per tenant). */
    personal: z.boolean().default(true),
  })
  .superRefine((server, context) => {
    if (Boolean(server.command) === Boolean(server.url)) {
      context.addIssue({
        code: "custom",
        message: "an MCP server needs exactly one of `command` (stdio) or `url` (Streamable HTTP)",
      });
    }
  });
export type McpServerConfig = z.infer<typeof McpServerConfig>;

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
      webhooks: z.record(z.string().regex(TOOL_NAME), WebhookToolConfig).default({}),
      /** MCP servers whose tools are offered like any other (name → server). */
      mcpServers: z.record(z.string().regex(TOOL_NAME), McpServerConfig).default({}),
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
    .default({ webhooks: {}, mcpServers: {}, overrides: {}, allowPrivateNetworks: [], policies: [] }),
});
export type ToolsSection = z.infer<typeof ToolsSection>;
