import { z } from "zod";
import {
  AssistantMessage,
  ChatMessage,
  ResponseFormat,
  ToolCall,
  ToolCallDelta,
  ToolChoice,
  ToolSpec,
} from "./chat.js";
import { RequestMeta, TokenUsage } from "./common.js";

export const TaskKind = z.enum(["route", "plan", "summarize", "classify", "answer", "act"]);
export type TaskKind = z.infer<typeof TaskKind>;

/**
 * What a client may ask of a model's answer beyond the prompt (OpenAI chat-completions options,
 * camel-cased): carried from the chat request through the run to each model call and the provider.
 */
export const ModelOptions = z.object({
  toolChoice: ToolChoice.optional(),
  parallelToolCalls: z.boolean().optional(),
  topP: z.number().min(0).max(1).optional(),
  seed: z.number().int().optional(),
  stop: z.union([z.string(), z.array(z.string())]).optional(),
  presencePenalty: z.number().min(-2).max(2).optional(),
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  /** Token id → bias (-100..100). */
  logitBias: z.record(z.string().regex(/^\d{1,10}$/), z.number().min(-100).max(100)).optional(),
  responseFormat: ResponseFormat.optional(),
  reasoningEffort: z.enum(["minimal", "low", "medium", "high"]).optional(),
});
export type ModelOptions = z.infer<typeof ModelOptions>;

export const ModelChatRequest = z.object({
  meta: RequestMeta,
  messages: z.array(ChatMessage).min(1),
  tools: z.array(ToolSpec).optional(),
  ...ModelOptions.shape,
  /** Explicit tier or model wins over routing rules. */
  tier: z.string().optional(),
  model: z.string().optional(),
  task: TaskKind.optional(),
  deepAnalysis: z.boolean().optional(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().positive().optional(),
  /** When set, deltas are published on this core NATS subject as they arrive. */
  streamSubject: z.string().optional(),
  /** Per-request opt-out of the response cache. */
  cache: z.boolean().optional(),
  /** Whether the offered tools have side effects (responses are then never cached). */
  toolsHaveSideEffects: z.boolean().optional(),
  /**
   * The call may have been made before under the same `meta.requestId` (its run was taken over
   * after a crash): the proxy answers from its idempotency record when it has one. A first call
   * skips that lookup.
   */
  resumed: z.boolean().optional(),
});
export type ModelChatRequest = z.infer<typeof ModelChatRequest>;

export const RouteDecision = z.object({
  tier: z.string(),
  reason: z.string(),
  variant: z.string().optional(),
  complexity: z.number().optional(),
});
export type RouteDecision = z.infer<typeof RouteDecision>;

export const ModelChatReply = z.object({
  message: AssistantMessage,
  finishReason: z.string(),
  usage: TokenUsage,
  costUsd: z.number().nonnegative(),
  model: z.string(),
  provider: z.string(),
  route: RouteDecision,
  cached: z.boolean(),
  latencyMs: z.number().nonnegative(),
  ttftMs: z.number().nonnegative().optional(),
  retries: z.number().int().nonnegative(),
  fallbacks: z.number().int().nonnegative(),
});
export type ModelChatReply = z.infer<typeof ModelChatReply>;

/** Published on `ModelChatRequest.streamSubject` while a streamed call runs. */
export const ModelStreamChunk = z.object({
  requestId: z.string(),
  index: z.number().int().nonnegative(),
  content: z.string().optional(),
  toolCalls: z.array(ToolCallDelta).optional(),
});
export type ModelStreamChunk = z.infer<typeof ModelStreamChunk>;

export const ModelEmbedRequest = z.object({
  meta: RequestMeta,
  model: z.string().optional(),
  input: z.array(z.string()).min(1).max(2048),
  cache: z.boolean().optional(),
});
export type ModelEmbedRequest = z.infer<typeof ModelEmbedRequest>;

export const ModelEmbedReply = z.object({
  embeddings: z.array(z.array(z.number())),
  model: z.string(),
  provider: z.string(),
  usage: z.object({ promptTokens: z.number().int().nonnegative() }),
  costUsd: z.number().nonnegative(),
  cachedCount: z.number().int().nonnegative(),
});
export type ModelEmbedReply = z.infer<typeof ModelEmbedReply>;

/** `model.list`: the models and tiers the proxy serves (ingress lists them and accepts them as `model`). */
export const ModelListRequest = z.object({ meta: RequestMeta });
export type ModelListRequest = z.infer<typeof ModelListRequest>;
export const ModelListReply = z.object({
  models: z.array(z.object({ name: z.string(), provider: z.string(), capabilities: z.array(z.string()) })),
  tiers: z.array(z.string()),
  embeddingModel: z.string().optional(),
});
export type ModelListReply = z.infer<typeof ModelListReply>;

export { ToolCall };
