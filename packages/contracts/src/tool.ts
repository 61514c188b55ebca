import { z } from "zod";
import { ToolSpec } from "./chat.js";
import { RequestMeta } from "./common.js";
import { WireError } from "./errors.js";

export const ToolCallStatus = z.enum([
  "ok",
  "invalid_arguments",
  "invalid_output",
  "error",
  "timeout",
  "cooldown",
  "overloaded",
  "not_found",
  /** The tool policy (tenant, agent, channel) or the agent's own tool list does not allow this call. */
  "forbidden",
]);
export type ToolCallStatus = z.infer<typeof ToolCallStatus>;

/** The door a run came in by (`chat`, `runs`, `events`): tool policies may name it. */
export const ToolChannel = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/)
  .optional();

/**
 * The tools the caller's agent may call: a call to any other is refused `forbidden` (enforced by
 * the executor as well as the tool policies, whatever the caller offered the model).
 */
const OfferedTools = z.array(z.string().max(100)).max(256).optional();

export const ToolExecRequest = z.object({
  meta: RequestMeta,
  channel: ToolChannel,
  offered: OfferedTools,
  callId: z.string().min(1),
  /** JSON text as produced by the model, or an already parsed object. */
  arguments: z.union([z.string(), z.record(z.string(), z.unknown())]),
  /** run id + step + call id for side-effecting tools. */
  idempotencyKey: z.string().optional(),
  timeoutMs: z.number().int().positive().optional(),
});
export type ToolExecRequest = z.infer<typeof ToolExecRequest>;

/** A tool call's arguments read as a value, or why they could not be. */
export type ToolArguments = { ok: true; value: unknown } | { ok: false; reason: "not valid JSON" };

/**
 * A tool call's arguments as a value: JSON text (as the model wrote it) is parsed, blank text
 * being `{}`; an already parsed value is taken as it is. Checking the value against the tool's
 * input schema is the caller's part.
 */
export function parseToolArguments(raw: unknown): ToolArguments {
  if (typeof raw !== "string") return { ok: true, value: raw };
  if (raw.trim() === "") return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(raw) as unknown };
  } catch {
    return { ok: false, reason: "not valid JSON" };
  }
}

export const ToolExecReply = z.object({
  callId: z.string(),
  name: z.string(),
  status: ToolCallStatus,
  /** Structured result, when status is ok. */
  output: z.unknown().optional(),
  /** What the model reads: the result or a readable error, capped in size. */
  content: z.string(),
  error: WireError.optional(),
  cached: z.boolean().default(false),
  replayed: z.boolean().default(false),
  truncated: z.boolean().default(false),
  latencyMs: z.number().nonnegative(),
  costUsd: z.number().nonnegative().default(0),
});
export type ToolExecReply = z.infer<typeof ToolExecReply>;

export const ToolBatchRequest = z.object({
  meta: RequestMeta,
  channel: ToolChannel,
  offered: OfferedTools,
  calls: z
    .array(
      z.object({
        callId: z.string().min(1),
        name: z.string().min(1),
        arguments: z.union([z.string(), z.record(z.string(), z.unknown())]),
        idempotencyKey: z.string().optional(),
      }),
    )
    .min(1)
    .max(64),
  timeoutMs: z.number().int().positive().optional(),
});
export type ToolBatchRequest = z.infer<typeof ToolBatchRequest>;

export const ToolBatchReply = z.object({ results: z.array(ToolExecReply) });
export type ToolBatchReply = z.infer<typeof ToolBatchReply>;

export const ToolDescriptor = z.object({
  name: z.string(),
  description: z.string(),
  kind: z.enum(["builtin", "webhook", "nats", "mcp"]),
  spec: ToolSpec,
  sideEffects: z.boolean(),
  timeoutMs: z.number().int().positive(),
  cacheTtlSeconds: z.number().int().nonnegative().optional(),
  costUsd: z.number().nonnegative().optional(),
  /**
   * Results may depend on who asks (the user): cached results are then kept per user. Absent
   * counts as personal; tools whose results depend on their arguments alone say `false`.
   */
  personal: z.boolean().optional(),
  /**
   * The tool's receiver applies each idempotency key once (it keeps the key and answers a repeat
   * with its first result, as payment APIs do): a side-effecting call whose outcome is unknown (its
   * executor stopped between claiming the key and hearing back) is then sent again under the same
   * key instead of being reported unknown. Absent counts as `false`.
   */
  idempotentByKey: z.boolean().optional(),
});
export type ToolDescriptor = z.infer<typeof ToolDescriptor>;

/**
 * How old a running claim of a side-effecting call's key is before it counts as left by a stopped
 * executor. A call acts for its tool's time limit at most. When its receiver applies each key once
 * the call is sent again as soon as the first send must be over (the limit and a second more);
 * otherwise the claim is given twice the limit, so a record still on its way is found instead.
 */
export function staleAfterMs(descriptor: Pick<ToolDescriptor, "timeoutMs" | "idempotentByKey">): number {
  return descriptor.idempotentByKey ? descriptor.timeoutMs + 1000 : descriptor.timeoutMs * 2;
}

export const ToolListRequest = z.object({
  tenant: z.string().optional(),
  agent: z.string().optional(),
  channel: ToolChannel,
  names: z.array(z.string()).optional(),
});
export type ToolListRequest = z.infer<typeof ToolListRequest>;

export const ToolListReply = z.object({ tools: z.array(ToolDescriptor) });
export type ToolListReply = z.infer<typeof ToolListReply>;

/** A NATS-hosted tool announcing itself (published on `tool.register`). */
export const ToolRegistration = z.object({
  descriptor: ToolDescriptor,
  /** Seconds the registration stays valid without a refresh. */
  ttlSeconds: z.number().int().positive().default(30),
});
export type ToolRegistration = z.infer<typeof ToolRegistration>;
