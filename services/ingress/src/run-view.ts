import type {
  RunCancelReply,
  RunEvent,
  RunRecord,
  StoredMessage,
  TokenUsage,
  WireError,
} from "@agent-runtime/contracts";
import type {
  ApiRun,
  ApiRunCancelled,
  ApiRunError,
  ApiRunEvent,
  ApiThreadMessage,
  ApiUsage,
} from "./api-schemas.js";

/*
 * The HTTP side speaks snake_case with `id` + `object` (the OpenAI way); NATS contracts stay
 * camelCase. Runs, run events and thread messages are mapped here, once, on their way out.
 */

export function usageView(usage: TokenUsage): ApiUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    cached_tokens: usage.cachedTokens,
    total_tokens: usage.totalTokens,
  };
}

export function errorView(error: WireError): ApiRunError {
  return {
    code: error.code,
    message: error.message,
    retryable: error.retryable,
    ...(error.retryAfterMs === undefined ? {} : { retry_after_ms: error.retryAfterMs }),
    ...(error.details === undefined ? {} : { details: error.details }),
  };
}

/** The run resource of `GET /v1/runs/{id}`, list items, the `wait` answer and the cancel answer. */
export function runView(run: RunRecord): ApiRun {
  return {
    id: run.runId,
    object: "run",
    tenant: run.tenant,
    agent: run.agent,
    status: run.status,
    priority: run.priority,
    thread_id: run.threadId,
    user_id: run.userId,
    parent_run_id: run.parentRunId,
    steps: run.steps,
    usage: usageView(run.usage),
    cost_usd: run.costUsd,
    output: run.output,
    error: run.error ? errorView(run.error) : null,
    created_at: run.createdAt,
    updated_at: run.updatedAt,
    finished_at: run.finishedAt,
  };
}

/** The answer of `POST /v1/runs/{id}/cancel`: the run as it is after the cancel, and whether it was cancelled now. */
export function cancelledView(run: RunRecord, reply: RunCancelReply): ApiRunCancelled {
  return { ...runView(run), status: reply.status, cancelled: reply.cancelled };
}

/** One run event as an SSE `data:` line. */
export function runEventView(event: RunEvent): ApiRunEvent {
  const base = { run_id: event.runId, seq: event.seq, ts: event.ts };
  switch (event.type) {
    case "run-started":
      return { type: event.type, ...base, agent: event.agent, attempt: event.attempt };
    case "step-started":
      return { type: event.type, ...base, step: event.step, kind: event.kind };
    case "delta":
      return {
        type: event.type,
        ...base,
        step: event.step,
        ...(event.content === undefined ? {} : { content: event.content }),
        ...(event.offset === undefined ? {} : { offset: event.offset }),
        ...(event.toolCalls === undefined ? {} : { tool_calls: event.toolCalls }),
      };
    case "tool-called":
      return {
        type: event.type,
        ...base,
        step: event.step,
        call_id: event.callId,
        name: event.name,
        arguments: event.arguments,
      };
    case "tool-result":
      return {
        type: event.type,
        ...base,
        step: event.step,
        call_id: event.callId,
        name: event.name,
        status: event.status,
        content: event.content,
        latency_ms: event.latencyMs,
        cached: event.cached,
      };
    case "usage":
      return {
        type: event.type,
        ...base,
        step: event.step,
        model: event.model,
        provider: event.provider,
        usage: usageView(event.usage),
        cost_usd: event.costUsd,
      };
    case "run-finished":
      return {
        type: event.type,
        ...base,
        status: event.status,
        ...(event.output === undefined ? {} : { output: event.output }),
        ...(event.finishReason === undefined ? {} : { finish_reason: event.finishReason }),
        usage: usageView(event.usage),
        cost_usd: event.costUsd,
        steps: event.steps,
        ...(event.error === undefined ? {} : { error: errorView(event.error) }),
        ...(event.threadId === undefined ? {} : { thread_id: event.threadId }),
      };
  }
}

/** One item of `GET /v1/threads/{id}/messages`. */
export function threadMessageView(stored: StoredMessage): ApiThreadMessage {
  return {
    id: stored.id,
    message: stored.message,
    ...(stored.createdAt === undefined ? {} : { created_at: stored.createdAt }),
    ...(stored.tokens === undefined ? {} : { tokens: stored.tokens }),
  };
}
