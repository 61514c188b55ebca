import {
  AssistantMessage,
  ChatCompletionRequest,
  ChatMessage,
  CloudEvent,
  CompletionUsage,
  ErrorCode,
  ID_PATTERN,
  RunPriority,
  RunStatus,
  StorableString,
  ToolCall,
  ToolCallDelta,
} from "@agent-runtime/contracts";
import { z } from "zod";

/** The runtime's own opt-in (not OpenAI's), on both doors that start a run. */
const DeepAnalysis = z
  .boolean()
  .optional()
  .describe(
    "ask for deep analysis: the run's model steps go to the strong tier, unless a configured route rule routes them first; off by default, as it costs more",
  );

/** `POST /v1/chat/completions` body: OpenAI's, with the runtime's own `deep_analysis`; no `model` runs `defaultAgent`. */
export const ChatCompletionBody = ChatCompletionRequest.extend({
  model: z
    .string()
    .min(1)
    .max(100)
    .optional()
    .describe(
      "an agent, or a model the model proxy serves (a plain turn on it); unset: the configured defaultAgent",
    ),
  deep_analysis: DeepAnalysis,
});
export type ChatCompletionBody = z.infer<typeof ChatCompletionBody>;

export const CreateRunBody = z.object({
  agent: z.string().min(1).max(100).default("assistant"),
  input: z.union([z.string().min(1).max(1_000_000), z.array(ChatMessage).min(1).max(1000)]),
  thread_id: z.string().regex(ID_PATTERN).optional(),
  user: z.string().max(200).optional(),
  priority: RunPriority.default("interactive"),
  /** Answer with the finished run (up to the run timeout). */
  wait: z.boolean().default(false),
  /** Answer with the run's events as SSE (resumable through GET /v1/runs/:id/events). */
  stream: z.boolean().default(false),
  metadata: z.record(z.string(), z.string()).optional(),
  deep_analysis: DeepAnalysis,
});
export type CreateRunBody = z.infer<typeof CreateRunBody>;

export const ListRunsQuery = z.object({
  thread_id: StorableString.max(200).optional().describe("only the runs of this thread"),
  status: RunStatus.optional().describe("only runs in this status"),
  agent: StorableString.max(100).optional().describe("only runs of this agent"),
  limit: z.coerce.number().int().min(1).max(100).default(20).describe("runs per page"),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_=-]{1,400}$/, "not a cursor from next_cursor")
    .optional()
    .describe("`next_cursor` of the previous page"),
});

export const ThreadMessagesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe("messages at most (the latest)"),
  before: z.string().max(200).optional().describe("only messages before the one with this id"),
});

export const EventBatch = z.array(CloudEvent).min(1, "send at least one event").max(100);
export const EventsBody = z.union([CloudEvent, EventBatch]);

// ---------------------------------------------------------------------------------------------
// Response bodies, as the routes answer them. The OpenAPI document is generated from these (and the
// request schemas above); the API tests parse real answers with them, so neither can drift alone.

const Timestamp = z.string().describe("ISO 8601 date-time");
const ListOf = <T extends z.ZodType>(item: T) => z.object({ object: z.literal("list"), data: z.array(item) });

export const HealthStatus = z.object({ status: z.literal("ok") });
export const Readiness = z.object({
  status: z.enum(["ready", "not_ready"]),
  /** Each dependency: `ok` or what failed. */
  checks: z.record(z.string(), z.string()),
});

export const ModelEntry = z.object({
  id: z.string(),
  object: z.literal("model"),
  created: z.number().int(),
  owned_by: z.string(),
  kind: z.enum(["agent", "model"]),
  description: z.string().optional(),
  capabilities: z.array(z.string()).optional(),
});
export const ModelListBody = ListOf(ModelEntry);

export const ChatCompletion = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({
        role: z.literal("assistant"),
        content: z.string().nullable(),
        tool_calls: z.array(ToolCall).optional(),
        refusal: z.string().nullable(),
      }),
      finish_reason: z.string(),
      logprobs: z.unknown().nullable(),
    }),
  ),
  usage: CompletionUsage,
});

/** One `data:` line of a streamed chat completion (the stream ends with `data: [DONE]`). */
export const ChatCompletionChunk = z.object({
  id: z.string(),
  object: z.literal("chat.completion.chunk"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      delta: z.object({
        role: z.literal("assistant").optional(),
        content: z.string().optional(),
        tool_calls: z.array(ToolCallDelta).optional(),
      }),
      finish_reason: z.string().nullable(),
      logprobs: z.unknown().nullable(),
    }),
  ),
  usage: CompletionUsage.optional(),
});

export const EmbeddingList = z.object({
  object: z.literal("list"),
  data: z.array(
    z.object({
      object: z.literal("embedding"),
      index: z.number().int(),
      /** Floats, or base64 of little-endian float32 with `encoding_format: base64`. */
      embedding: z.union([z.array(z.number()), z.string()]),
    }),
  ),
  model: z.string(),
  usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
});

/** `202` of `POST /v1/runs`: the run is in the queue (`Location: /v1/runs/{id}`). */
export const RunAccepted = z.object({
  id: z.string(),
  object: z.literal("run"),
  status: z.literal("queued"),
  priority: RunPriority,
  queue_depth: z.number().int().nonnegative(),
  /** A retried request (same `Idempotency-Key`): the first request's run. */
  duplicate: z.literal(true).optional(),
});

/** Token counts of a run, a step or a model call. */
export const ApiUsage = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
  cached_tokens: z
    .number()
    .int()
    .nonnegative()
    .describe("prompt tokens the provider served from its prompt cache"),
  total_tokens: z.number().int().nonnegative(),
});
export type ApiUsage = z.infer<typeof ApiUsage>;

/** Why a run failed, was cancelled or ran out of budget. */
export const ApiRunError = z.object({
  code: ErrorCode,
  message: z.string(),
  retryable: z.boolean(),
  retry_after_ms: z.number().int().nonnegative().optional(),
  details: z.unknown().optional(),
});
export type ApiRunError = z.infer<typeof ApiRunError>;

/** The run resource: `GET /v1/runs/{id}`, the items of `GET /v1/runs`, the `wait` and cancel answers. */
export const ApiRun = z.object({
  id: z.string(),
  object: z.literal("run"),
  tenant: z.string(),
  agent: z.string(),
  status: RunStatus,
  priority: RunPriority,
  thread_id: z.string().nullable(),
  user_id: z.string().nullable(),
  parent_run_id: z.string().nullable().describe("the run that delegated to this one"),
  steps: z.number().int().nonnegative(),
  usage: ApiUsage,
  cost_usd: z.number().nonnegative(),
  output: AssistantMessage.nullable(),
  error: ApiRunError.nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
  finished_at: Timestamp.nullable(),
});
export type ApiRun = z.infer<typeof ApiRun>;

/** `200` of `POST /v1/runs` with `wait`: the finished run. */
export const RunResult = ApiRun.extend({
  /** A retried request (same `Idempotency-Key`): the first request's run. */
  duplicate: z.literal(true).optional(),
});

/** `POST /v1/runs/{id}/cancel`: the run after the cancel; `cancelled` is false for a run already over. */
export const ApiRunCancelled = ApiRun.extend({ cancelled: z.boolean() });
export type ApiRunCancelled = z.infer<typeof ApiRunCancelled>;

export const RunListBody = ListOf(ApiRun).extend({ next_cursor: z.string().nullable() });

const RunEventBase = z.object({
  run_id: z.string(),
  seq: z.number().int().nonnegative().describe("the event's number within its run"),
  ts: z.number().describe("epoch milliseconds"),
});
const StepOf = z.number().int().nonnegative();

/** One `data:` line of a run's SSE (`event:` repeats `type`). */
export const ApiRunEvent = z.discriminatedUnion("type", [
  RunEventBase.extend({
    type: z.literal("run-started"),
    agent: z.string(),
    attempt: z.number().int().positive(),
  }),
  RunEventBase.extend({
    type: z.literal("step-started"),
    step: StepOf,
    kind: z.enum(["model", "tools", "plan"]),
  }),
  RunEventBase.extend({
    type: z.literal("delta"),
    step: StepOf,
    content: z.string().optional(),
    /** Where `content` starts in the text of its step: a resent step's text is taken from past what is held. */
    offset: z.number().int().nonnegative().optional(),
    tool_calls: z.array(ToolCallDelta).optional(),
  }),
  RunEventBase.extend({
    type: z.literal("tool-called"),
    step: StepOf,
    call_id: z.string(),
    name: z.string(),
    arguments: z.string(),
  }),
  RunEventBase.extend({
    type: z.literal("tool-result"),
    step: StepOf,
    call_id: z.string(),
    name: z.string(),
    status: z.string(),
    content: z.string(),
    latency_ms: z.number().nonnegative(),
    cached: z.boolean(),
  }),
  RunEventBase.extend({
    type: z.literal("usage"),
    step: StepOf,
    model: z.string(),
    provider: z.string(),
    usage: ApiUsage,
    cost_usd: z.number().nonnegative(),
  }),
  RunEventBase.extend({
    type: z.literal("run-finished"),
    status: RunStatus,
    output: AssistantMessage.optional(),
    finish_reason: z.string().optional(),
    usage: ApiUsage,
    cost_usd: z.number().nonnegative(),
    steps: z.number().int().nonnegative(),
    error: ApiRunError.optional(),
    thread_id: z.string().optional(),
  }),
]);
export type ApiRunEvent = z.infer<typeof ApiRunEvent>;

/** One message of a thread; `id` is the message's own. */
export const ApiThreadMessage = z.object({
  id: z.string(),
  message: ChatMessage,
  created_at: Timestamp.optional(),
  tokens: z.number().int().nonnegative().optional(),
});
export type ApiThreadMessage = z.infer<typeof ApiThreadMessage>;

export const ThreadMessagesBody = ListOf(ApiThreadMessage).extend({ thread_id: z.string() });

/** What a forget removed (runs and steps are kept with their totals, their content scrubbed). */
const Forgotten = z.object({
  deleted: z.literal(true),
  runs: z.number().int().nonnegative().describe("runs scrubbed (status and totals kept)"),
  steps: z.number().int().nonnegative().describe("run steps scrubbed"),
  cancelled: z.number().int().nonnegative().describe("runs still going that were cancelled first"),
  threads: z.number().int().nonnegative(),
  messages: z.number().int().nonnegative(),
  documents: z.number().int().nonnegative(),
  chunks: z.number().int().nonnegative(),
});

export const ThreadDeleted = Forgotten.extend({ id: z.string(), object: z.literal("thread") });

export const UserDeleted = Forgotten.extend({ id: z.string(), object: z.literal("user") });

export const EventsAccepted = z.object({
  accepted: z.array(
    z.object({
      id: z.string(),
      /** Already stored (same tenant and id within the stream's duplicate window): not stored again. */
      duplicate: z.boolean(),
      seq: z.number().int().nonnegative(),
    }),
  ),
});

export const MemoryCreated = z.object({
  id: z.string(),
  object: z.literal("memory"),
  user: z.string().nullable(),
  kind: z.string(),
  chunks: z.number().int().nonnegative(),
  /** Embedding is still queued: it is found by keywords until then. */
  indexing: z.boolean(),
});

export const MemoryListed = z.object({
  id: z.string(),
  object: z.literal("memory"),
  user: z.string().nullable(),
  shared: z.boolean(),
  kind: z.string(),
  /** The memory's text, cut at 4000 characters (`text_truncated`). */
  text: z.string(),
  text_truncated: z.boolean(),
  chunks: z.number().int().nonnegative(),
  metadata: z.record(z.string(), z.unknown()),
  created_at: Timestamp,
});
export const MemoryListBody = ListOf(MemoryListed).extend({ next_cursor: z.string().nullable() });

export const MemoryFound = z.object({
  id: z.string(),
  object: z.literal("memory"),
  shared: z.boolean(),
  kind: z.string(),
  /** The matching chunk of the memory. */
  text: z.string(),
  score: z.number(),
  metadata: z.record(z.string(), z.unknown()),
});
export const MemorySearchBody = ListOf(MemoryFound);

export const MemoryDeleted = z.object({
  id: z.string(),
  object: z.literal("memory"),
  deleted: z.literal(true),
});

/** `GET /v1/stats`: `cost_usd` counts priced calls only; calls of unpriced models are `unpriced_calls`. */
export const StatsQuery = z.object({
  days: z.string().optional().describe("UTC days back, 1-365 (anything else reads as 7)"),
  tenant: z.string().optional().describe("another tenant, or `*` for all (admin keys only)"),
});

const UsageItem = z.object({
  tenant: z.string(),
  kind: z.string().describe("model-chat, model-embed or tool"),
  name: z.string(),
  agent: z.string(),
  calls: z.number().int(),
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  cost_usd: z
    .number()
    .nullable()
    .describe("USD of the priced calls; null (unknown) when every paid call was of a model with no price"),
  unpriced_calls: z
    .number()
    .int()
    .describe("paid calls of a model with no price: their cost is unknown, not 0"),
  cache_hits: z.number().int(),
  errors: z.number().int(),
  avg_latency_ms: z.number(),
});
export type UsageItem = z.infer<typeof UsageItem>;
/** Chat usage of one agent on one route and tier (`routes`) or in one A/B variant (`variants`). */
const RouteUsageItem = z.object({
  tenant: z.string(),
  agent: z.string(),
  route: z.string().optional().describe("the step's task (answer, act, plan, …); in `routes` only"),
  tier: z
    .string()
    .optional()
    .describe("the tier it was routed to (explicit for a pinned model); in `routes` only"),
  variant: z.string().optional().describe("the A/B variant; in `variants` only"),
  calls: z.number().int(),
  prompt_tokens: z.number().int(),
  cached_tokens: z.number().int().describe("prompt tokens the provider served from its prompt cache"),
  completion_tokens: z.number().int(),
  cost_usd: z.number(),
  cache_hits: z.number().int(),
  errors: z.number().int(),
  avg_latency_ms: z.number(),
});
export type RouteUsageItem = z.infer<typeof RouteUsageItem>;
export const UsageStatsBody = z.object({
  tenant: z.string(),
  days: z.number().int(),
  totals: z.object({
    runs: z.number().int(),
    calls: z.number().int(),
    tokens: z.number().int(),
    cost_usd: z.number().describe("USD of the priced calls: a lower bound while unpriced_calls > 0"),
    unpriced_calls: z.number().int().describe("paid calls of models with no price, not in cost_usd"),
    cache_hits: z.number().int(),
    errors: z.number().int(),
    avg_latency_ms: z.number(),
  }),
  runs: z.array(z.object({ tenant: z.string(), agent: z.string(), runs: z.number().int() })),
  items: z.array(UsageItem),
  routes: z.array(RouteUsageItem).describe("model chat usage by agent, route and tier"),
  variants: z.array(RouteUsageItem).describe("model chat usage by agent and A/B variant"),
});
export type UsageStatsBody = z.infer<typeof UsageStatsBody>;

/** `GET /v1/admin/tenants/{tenant}/usage`: the usage of `/v1/stats`, without the route and variant breakdowns. */
export const TenantUsageBody = UsageStatsBody.omit({ routes: true, variants: true });
export type TenantUsageBody = z.infer<typeof TenantUsageBody>;

const Series = z.object({ label: z.string(), values: z.array(z.number().nullable()) });
const SeriesGroups = z.object({ model: z.array(Series), agent: z.array(Series), tenant: z.array(Series) });
export const StatsSeriesBody = z.object({
  tenant: z.string(),
  range: z.string(),
  tier: z.string(),
  step_seconds: z.number().int(),
  /** Bucket start times (epoch seconds), one per value of every series. */
  times: z.array(z.number()),
  latency: z.object({ by_service: z.array(Series), by_agent: z.array(Series) }),
  tokens: SeriesGroups,
  cost_usd: SeriesGroups,
  error_rate: z.array(Series),
  throughput: z.array(Series),
  queue: z.array(Series),
  shed: z.array(Series),
  totals: z.object({
    calls: z.number(),
    errors: z.number(),
    tokens: z.number(),
    cost_usd: z.number(),
    requests: z.number(),
    refused: z.number(),
  }),
  hotspots: z.array(
    z.object({
      kind: z.enum(["agent", "tool", "tenant", "user", "route", "model"]),
      name: z.string(),
      calls: z.number(),
      p95_ms: z.number(),
      error_rate: z.number(),
      cost_usd: z.number(),
    }),
  ),
  cache_savings: z.array(
    z.object({
      cache: z.enum(["response", "embedding", "tool", "provider prompt"]),
      hits: z.number(),
      calls: z.number(),
      tokens: z.number(),
      saved_usd: z.number(),
    }),
  ),
  query_ms: z.number(),
  /** Tenants to pick from (admin keys only). */
  tenants: z.array(z.string()).optional(),
});
export type StatsSeriesBody = z.infer<typeof StatsSeriesBody>;

export const ApiKeyView = z.object({
  id: z.string(),
  object: z.literal("api_key"),
  tenant: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  created_at: Timestamp,
  revoked_at: Timestamp.nullable(),
});
export const ApiKeyListBody = ListOf(ApiKeyView);
export const ApiKeyCreated = z.object({
  id: z.string(),
  object: z.literal("api_key"),
  tenant: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  /** The key itself: shown in this answer only (it is stored hashed). */
  key: z.string(),
});
export const ApiKeyRevoked = z.object({
  id: z.string(),
  object: z.literal("api_key"),
  revoked: z.literal(true),
});
/** Stored limits by their API names (`requests_per_minute`, …). */
const WireLimits = z.record(z.string(), z.number());
export const TenantListBody = ListOf(
  z.object({
    id: z.string(),
    object: z.literal("tenant"),
    active_keys: z.number().int(),
    limits: WireLimits,
  }),
);
export const TenantLimitsView = z.object({ tenant: z.string(), limits: WireLimits });
