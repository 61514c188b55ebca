import type { ToolDescriptor, ToolSpec } from "@agent-runtime/contracts";
import { z } from "zod";

export interface ToolOptions {
  timeoutMs: number;
  /** Calls of this tool running at once, across replicas. */
  maxConcurrency: number;
  /** Minimum seconds between calls by the same user (0 = none). */
  cooldownSeconds: number;
  /** Read-only results are cached this long (0 = never). */
  cacheTtlSeconds: number;
  sideEffects: boolean;
  costUsd: number;
  /** Results longer than this are cut before they reach the prompt. */
  maxResultChars: number;
  /** Results may differ per user (cached per user); `false` when the arguments alone decide them. */
  personal: boolean;
  /**
   * The receiver applies each idempotency key once, so a side-effecting call whose outcome is
   * unknown may be sent again under its key (see `ToolDescriptor.idempotentByKey`).
   */
  idempotentByKey: boolean;
}

export interface ToolCallContext {
  tenant: string;
  userId?: string;
  /** The agent whose run made the call. */
  agent?: string;
  runId?: string;
  callId: string;
  /**
   * A side-effecting call's key, stable when the model is asked again (run, step and call
   * position): what a receiver that applies each key once should see.
   */
  idempotencyKey?: string;
  signal: AbortSignal;
  deadline: number;
}

export interface ToolDefinition<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  input: I;
  output?: O;
  options: ToolOptions;
  handler: (input: z.infer<I>, context: ToolCallContext) => Promise<z.input<O>> | z.input<O>;
}

export const DEFAULT_TOOL_OPTIONS: ToolOptions = {
  timeoutMs: 10_000,
  maxConcurrency: 32,
  cooldownSeconds: 0,
  cacheTtlSeconds: 0,
  sideEffects: false,
  costUsd: 0,
  maxResultChars: 16_000,
  personal: true,
  idempotentByKey: false,
};

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Defines a tool once: zod input (and output) schema, description, options, handler. */
export function defineTool<I extends z.ZodType, O extends z.ZodType = z.ZodUnknown>(definition: {
  name: string;
  description: string;
  input: I;
  output?: O;
  options?: Partial<ToolOptions>;
  handler: ToolDefinition<I, O>["handler"];
}): ToolDefinition<I, O> {
  if (!NAME.test(definition.name)) throw new RangeError(`tool name "${definition.name}" must match ${NAME}`);
  return { ...definition, options: { ...DEFAULT_TOOL_OPTIONS, ...definition.options } };
}

/** The JSON Schema the model sees, generated from the zod input schema. */
export function toolParameters(input: z.ZodType): Record<string, unknown> {
  const schema = z.toJSONSchema(input, { target: "draft-7", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
  delete schema.$schema;
  if (schema.type !== "object") return { type: "object", properties: {}, additionalProperties: true };
  return schema;
}

export function toolSpec(tool: Pick<ToolDefinition, "name" | "description" | "input">): ToolSpec {
  return {
    type: "function",
    function: { name: tool.name, description: tool.description, parameters: toolParameters(tool.input) },
  };
}

export function describeTool(tool: ToolDefinition, kind: ToolDescriptor["kind"]): ToolDescriptor {
  return {
    name: tool.name,
    description: tool.description,
    kind,
    spec: toolSpec(tool),
    sideEffects: tool.options.sideEffects,
    timeoutMs: tool.options.timeoutMs,
    cacheTtlSeconds: tool.options.cacheTtlSeconds,
    costUsd: tool.options.costUsd,
    personal: tool.options.personal,
    ...(tool.options.idempotentByKey ? { idempotentByKey: true } : {}),
  };
}
