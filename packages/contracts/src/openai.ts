import { z } from "zod";
import { ChatMessage, ToolSpec } from "./chat.js";

/** `POST /v1/chat/completions` body, OpenAI wire format. */
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
  tool_choice: z.unknown().optional(),
  n: z.literal(1).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  response_format: z.unknown().optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

export const CompletionUsage = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  prompt_tokens_details: z.object({ cached_tokens: z.number().int() }).optional(),
});
export type CompletionUsage = z.infer<typeof CompletionUsage>;
