import type { ModelConfig, ProviderConfig } from "@agent-runtime/config";
import {
  type AssistantMessage,
  type ModelChatRequest,
  RuntimeError,
  type TokenUsage,
} from "@agent-runtime/contracts";
import OpenAI from "openai";
import { parseRetryAfter } from "./backoff.js";
import { providerFetch } from "./provider-http.js";
import { countTextTokens, estimatePromptTokens } from "./tokens.js";

export interface CompletionResult {
  message: AssistantMessage;
  finishReason: string;
  usage: TokenUsage;
  usageEstimated: boolean;
  ttftMs?: number;
}

export interface StreamDelta {
  content?: string;
  toolCalls?: { index: number; id?: string; name?: string; arguments?: string }[];
}

export interface Provider {
  name: string;
  config: ProviderConfig;
  client: OpenAI | null;
}

export function createProvider(name: string, config: ProviderConfig, env: NodeJS.ProcessEnv): Provider {
  if (name === "offline") return { name, config, client: null };
  const apiKey = config.apiKey ?? (config.apiKeyEnv ? env[config.apiKeyEnv] : undefined) ?? "not-needed";
  const client = new OpenAI({
    baseURL: config.baseUrl,
    apiKey,
    maxRetries: 0,
    timeout: config.timeoutMs,
    defaultHeaders: config.headers,
    fetch: providerFetch,
  });
  return { name, config, client };
}

/** Turns a provider failure into a typed error; `retryable` says whether another attempt may work. */
export function classifyProviderError(error: unknown, provider: string): RuntimeError {
  if (error instanceof RuntimeError) return error;
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new RuntimeError("timeout", `${provider} did not answer in time`, {
      retryable: true,
      cause: error,
    });
  }
  if (error instanceof OpenAI.APIUserAbortError) {
    return new RuntimeError("cancelled", "call cancelled", { retryable: false, cause: error });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new RuntimeError("upstream", `cannot reach ${provider}: ${error.message}`, {
      retryable: true,
      cause: error,
    });
  }
  if (error instanceof OpenAI.APIError) {
    const status = error.status ?? 0;
    const retryAfterMs = parseRetryAfter(error.headers as { get(name: string): string | null } | undefined);
    const details = { provider, status };
    if (status === 429) {
      return new RuntimeError("rate_limited", `${provider} is rate limiting`, {
        retryable: true,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        details,
        cause: error,
      });
    }
    if (status >= 500 || status === 408 || status === 409) {
      return new RuntimeError("upstream", `${provider} failed with ${status}`, {
        retryable: true,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        details,
        cause: error,
      });
    }
    // other 4xx fail again on retry
    return new RuntimeError("upstream", `${provider} rejected the request (${status}): ${error.message}`, {
      retryable: false,
      details,
      cause: error,
    });
  }
  // malformed bodies and protocol errors: another attempt may work
  const message = error instanceof Error ? error.message : String(error);
  return new RuntimeError("upstream", `${provider} sent an invalid response: ${message}`, {
    retryable: true,
    cause: error,
  });
}

/** The chat-completions parameters of a request, every client option with its OpenAI meaning. */
export function buildParams(request: ModelChatRequest, providerModelId: string) {
  const tools = request.tools && request.tools.length > 0 ? request.tools : undefined;
  return {
    model: providerModelId,
    messages: request.messages as OpenAI.Chat.Completions.ChatCompletionMessageParam[],
    ...(tools ? { tools: tools as OpenAI.Chat.Completions.ChatCompletionTool[] } : {}),
    // a provider refuses tool_choice and parallel_tool_calls without tools
    ...(tools && request.toolChoice
      ? { tool_choice: request.toolChoice as OpenAI.Chat.Completions.ChatCompletionToolChoiceOption }
      : {}),
    ...(tools && request.parallelToolCalls !== undefined
      ? { parallel_tool_calls: request.parallelToolCalls }
      : {}),
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.topP !== undefined ? { top_p: request.topP } : {}),
    ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
    ...(request.seed !== undefined ? { seed: request.seed } : {}),
    ...(request.stop !== undefined ? { stop: request.stop } : {}),
    ...(request.presencePenalty !== undefined ? { presence_penalty: request.presencePenalty } : {}),
    ...(request.frequencyPenalty !== undefined ? { frequency_penalty: request.frequencyPenalty } : {}),
    ...(request.logitBias !== undefined ? { logit_bias: request.logitBias } : {}),
    ...(request.reasoningEffort !== undefined ? { reasoning_effort: request.reasoningEffort } : {}),
    ...(request.responseFormat
      ? {
          response_format:
            request.responseFormat as OpenAI.Chat.Completions.ChatCompletionCreateParams["response_format"],
        }
      : {}),
  };
}

function usageFrom(
  raw: OpenAI.CompletionUsage | null | undefined,
  request: ModelChatRequest,
  completionText: string,
): { usage: TokenUsage; estimated: boolean } {
  if (raw && typeof raw.prompt_tokens === "number") {
    const cached = raw.prompt_tokens_details?.cached_tokens ?? 0;
    return {
      usage: {
        promptTokens: raw.prompt_tokens,
        completionTokens: raw.completion_tokens ?? 0,
        cachedTokens: cached,
        totalTokens: raw.total_tokens ?? raw.prompt_tokens + (raw.completion_tokens ?? 0),
      },
      estimated: false,
    };
  }
  const promptTokens = estimatePromptTokens(request);
  const completionTokens = countTextTokens(completionText);
  return {
    usage: { promptTokens, completionTokens, cachedTokens: 0, totalTokens: promptTokens + completionTokens },
    estimated: true,
  };
}

/** One attempt against one model, streamed when `onDelta` is given. */
export async function callProvider(
  provider: Provider,
  model: ModelConfig,
  modelName: string,
  request: ModelChatRequest,
  options: { signal: AbortSignal; timeoutMs: number; onDelta?: (delta: StreamDelta) => void },
): Promise<CompletionResult> {
  const client = provider.client;
  if (!client) throw new RuntimeError("internal", "offline provider has no client");
  const params = buildParams(request, model.id ?? modelName);
  const started = performance.now();
  if (!options.onDelta) {
    const completion = await client.chat.completions.create(
      { ...params, stream: false },
      { signal: options.signal, timeout: options.timeoutMs, maxRetries: 0 },
    );
    const choice = completion.choices?.[0];
    if (!choice?.message)
      throw new RuntimeError("upstream", `${provider.name} returned no choices`, { retryable: true });
    const toolCalls = (choice.message.tool_calls ?? [])
      .filter((call) => call.type === "function")
      .map((call) => ({
        id: call.id,
        type: "function" as const,
        function: { name: call.function.name, arguments: call.function.arguments },
      }));
    const content = choice.message.content ?? null;
    const { usage, estimated } = usageFrom(
      completion.usage,
      request,
      (content ?? "") + toolCalls.map((c) => c.function.arguments).join(""),
    );
    return {
      message: { role: "assistant", content, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) },
      finishReason: choice.finish_reason ?? "stop",
      usage,
      usageEstimated: estimated,
    };
  }

  const stream = await client.chat.completions.create(
    { ...params, stream: true, stream_options: { include_usage: true } },
    { signal: options.signal, timeout: options.timeoutMs, maxRetries: 0 },
  );
  let content = "";
  let finishReason: string | undefined;
  let rawUsage: OpenAI.CompletionUsage | null | undefined;
  let ttftMs: number | undefined;
  const calls: { id: string; name: string; arguments: string }[] = [];
  for await (const chunk of stream) {
    if (chunk.usage) rawUsage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    if (choice.finish_reason) finishReason = choice.finish_reason;
    const delta = choice.delta;
    const out: StreamDelta = {};
    if (delta?.content) {
      content += delta.content;
      out.content = delta.content;
    }
    if (delta?.tool_calls) {
      out.toolCalls = [];
      for (const part of delta.tool_calls) {
        let slot = calls[part.index];
        if (!slot) {
          slot = { id: "", name: "", arguments: "" };
          calls[part.index] = slot;
        }
        if (part.id) slot.id = part.id;
        if (part.function?.name) slot.name += part.function.name;
        if (part.function?.arguments) slot.arguments += part.function.arguments;
        out.toolCalls.push({
          index: part.index,
          ...(part.id ? { id: part.id } : {}),
          ...(part.function?.name ? { name: part.function.name } : {}),
          ...(part.function?.arguments ? { arguments: part.function.arguments } : {}),
        });
      }
    }
    if (out.content !== undefined || out.toolCalls) {
      ttftMs ??= performance.now() - started;
      options.onDelta(out);
    }
  }
  if (!finishReason) {
    throw new RuntimeError("upstream", `${provider.name} ended the stream without a finish reason`, {
      retryable: true,
    });
  }
  const toolCalls = calls.filter(Boolean).map((call) => ({
    id: call.id,
    type: "function" as const,
    function: { name: call.name, arguments: call.arguments },
  }));
  const { usage, estimated } = usageFrom(
    rawUsage,
    request,
    content + toolCalls.map((c) => c.function.arguments).join(""),
  );
  return {
    message: {
      role: "assistant",
      content: content || (toolCalls.length > 0 ? null : ""),
      ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
    },
    finishReason,
    usage,
    usageEstimated: estimated,
    ...(ttftMs === undefined ? {} : { ttftMs }),
  };
}
