import { z } from "zod";
import { ChatMessage, ResponseFormat, ToolChoice, ToolSpec } from "./chat.js";
import type { ModelOptions } from "./model.js";

/** A field the runtime cannot honour: refused with a 400 naming it, never silently dropped. */
function unsupported(message: string) {
  return z.never({ error: message }).nullish();
}

/**
 * `POST /v1/chat/completions` body, OpenAI wire format. Every field is either carried to the
 * provider with its meaning kept or refused naming it; `store` and `service_tier` (which concern
 * the provider account, not the answer) are accepted and not forwarded.
 */
export const ChatCompletionRequest = z.object({
  model: z.string().min(1).max(100).default("assistant"),
  messages: z.array(ChatMessage).min(1, "messages must hold at least one message").max(1000),
  stream: z.boolean().default(false),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  user: z.string().max(200).optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  tools: z.array(ToolSpec).max(128).optional(),
  tool_choice: ToolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  n: z.literal(1, { error: "only n = 1 is supported (one choice per request)" }).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z
    .record(z.string().regex(/^\d{1,10}$/, "logit_bias keys are token ids"), z.number().min(-100).max(100))
    .nullish(),
  response_format: ResponseFormat.nullish(),
  reasoning_effort: z.enum(["minimal", "low", "medium", "high"]).nullish(),
  store: z.boolean().nullish(),
  service_tier: z.string().max(50).nullish(),
  logprobs: z.literal(false, { error: "logprobs are not supported" }).nullish(),
  top_logprobs: unsupported("top_logprobs is not supported (logprobs are not returned)"),
  modalities: z.array(z.literal("text", { error: "only the text modality is supported" })).nullish(),
  audio: unsupported("audio output is not supported"),
  prediction: unsupported("predicted outputs are not supported"),
  web_search_options: unsupported("web search is not supported; give the agent a tool instead"),
  functions: unsupported("the legacy `functions` field is not supported; use `tools`"),
  function_call: unsupported("the legacy `function_call` field is not supported; use `tool_choice`"),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** The model options of a chat request, as a run carries them to each model call. */
export function modelOptionsOf(body: ChatCompletionRequest): ModelOptions {
  const options: ModelOptions = {};
  if (body.tool_choice != null) options.toolChoice = body.tool_choice;
  if (body.parallel_tool_calls != null) options.parallelToolCalls = body.parallel_tool_calls;
  if (body.top_p != null) options.topP = body.top_p;
  if (body.seed != null) options.seed = body.seed;
  if (body.stop != null) options.stop = body.stop;
  if (body.presence_penalty != null) options.presencePenalty = body.presence_penalty;
  if (body.frequency_penalty != null) options.frequencyPenalty = body.frequency_penalty;
  if (body.logit_bias != null) options.logitBias = body.logit_bias;
  if (body.response_format != null && body.response_format.type !== "text")
    options.responseFormat = body.response_format;
  if (body.reasoning_effort != null) options.reasoningEffort = body.reasoning_effort;
  return options;
}

export const CompletionUsage = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  prompt_tokens_details: z.object({ cached_tokens: z.number().int() }).optional(),
});
export type CompletionUsage = z.infer<typeof CompletionUsage>;

/**
 * `POST /v1/embeddings` body, OpenAI wire format. Text input only (a string or up to 2048 strings);
 * `encoding_format` `float` or `base64`.
 */
export const EmbeddingsRequest = z.object({
  model: z.string().min(1).max(100).optional(),
  input: z.union([
    z.string().min(1, "input must not be empty"),
    z.array(z.string().min(1, "input strings must not be empty")).min(1).max(2048),
  ]),
  encoding_format: z.enum(["float", "base64"]).default("float"),
  dimensions: unsupported("dimensions is not supported; configure an embedding model of the size you need"),
  user: z.string().max(200).optional(),
});
export type EmbeddingsRequest = z.infer<typeof EmbeddingsRequest>;
