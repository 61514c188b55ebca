import { type Attributes, type AttributeValue, type Span, trace } from "@opentelemetry/api";

/**
 * Attribute names on this runtime's spans: OpenTelemetry semantic conventions where one exists
 * (GenAI, messaging, HTTP, errors), `agent_runtime.*` for the rest.
 */
export const SpanAttribute = {
  tenant: "agent_runtime.tenant",
  runId: "agent_runtime.run.id",
  step: "agent_runtime.run.step",
  priority: "agent_runtime.priority",
  agent: "gen_ai.agent.name",
  operation: "gen_ai.operation.name",
  provider: "gen_ai.provider.name",
  requestModel: "gen_ai.request.model",
  responseModel: "gen_ai.response.model",
  inputTokens: "gen_ai.usage.input_tokens",
  outputTokens: "gen_ai.usage.output_tokens",
  cachedTokens: "gen_ai.usage.cache_read.input_tokens",
  costUsd: "agent_runtime.cost.usd",
  cached: "agent_runtime.cached",
  toolName: "gen_ai.tool.name",
  errorType: "error.type",
  messagingSystem: "messaging.system",
  destination: "messaging.destination.name",
  consumerGroup: "messaging.consumer.group.name",
} as const;

export type SpanAttributeValues = Record<string, AttributeValue | undefined>;

/** Sets the defined attributes on a span, the active one by default (a no-op without one). */
export function annotateSpan(
  attributes: SpanAttributeValues,
  span: Span | undefined = trace.getActiveSpan(),
): void {
  if (!span?.isRecording()) return;
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined) span.setAttribute(key, value);
  }
}

/**
 * Tenant, run, agent and lane of a message, as span attributes: from its `meta` (RequestMeta), or
 * from its own fields when it has none (a run request carries them at the top).
 */
export function metaAttributes(payload: unknown): Attributes {
  if (typeof payload !== "object" || payload === null) return {};
  const carried = (payload as { meta?: unknown }).meta;
  const meta = typeof carried === "object" && carried !== null ? carried : payload;
  const { tenant, runId, agent, priority } = meta as Record<string, unknown>;
  const attributes: Attributes = {};
  if (typeof tenant === "string") attributes[SpanAttribute.tenant] = tenant;
  if (typeof runId === "string") attributes[SpanAttribute.runId] = runId;
  if (typeof agent === "string") attributes[SpanAttribute.agent] = agent;
  if (typeof priority === "string") attributes[SpanAttribute.priority] = priority;
  return attributes;
}
