import {
  AssistantMessage,
  ChatMessage,
  CloudEvent,
  EmbeddingsRequest,
  HttpErrorBody,
  ID_PATTERN,
  TENANT_ID_PATTERN,
} from "@agent-runtime/contracts";
import { z } from "zod";
import { CreateKeyBody, KeysQuery, TenantLimitsBody, UsageQuery } from "./admin-route.js";
import {
  ApiKeyCreated,
  ApiKeyListBody,
  ApiKeyRevoked,
  ApiKeyView,
  ApiRun,
  ApiRunCancelled,
  ApiRunError,
  ApiRunEvent,
  ApiThreadMessage,
  ApiUsage,
  ChatCompletion,
  ChatCompletionBody,
  CreateRunBody,
  EmbeddingList,
  EventBatch,
  EventsAccepted,
  HealthStatus,
  ListRunsQuery,
  MemoryCreated,
  MemoryDeleted,
  MemoryListBody,
  MemorySearchBody,
  ModelEntry,
  ModelListBody,
  Readiness,
  RunAccepted,
  RunListBody,
  RunResult,
  StatsQuery,
  StatsSeriesBody,
  TenantLimitsView,
  TenantListBody,
  TenantUsageBody,
  ThreadDeleted,
  ThreadMessagesBody,
  ThreadMessagesQuery,
  UsageStatsBody,
  UserDeleted,
} from "./api-schemas.js";
import { SeriesQuery } from "./dashboard-routes.js";
import {
  CreateMemoryBody,
  ListMemoriesQuery,
  MEMORY_ID,
  MemoryOwnerQuery,
  SearchMemoriesQuery,
} from "./memories-route.js";

type Json = Record<string, unknown>;
type Method = "get" | "post" | "patch" | "delete";

/** The named schemas of the document (`#/components/schemas/<name>`); any other schema is inlined. */
const COMPONENTS: Record<string, z.ZodType> = {
  Error: HttpErrorBody,
  Usage: ApiUsage,
  RunError: ApiRunError,
  ChatMessage,
  AssistantMessage,
  ChatCompletionRequest: ChatCompletionBody,
  ChatCompletion,
  EmbeddingsRequest,
  EmbeddingList,
  Model: ModelEntry,
  ModelList: ModelListBody,
  CreateRunRequest: CreateRunBody,
  RunAccepted,
  RunResult,
  Run: ApiRun,
  RunList: RunListBody,
  RunCancelled: ApiRunCancelled,
  RunEvent: ApiRunEvent,
  ThreadMessage: ApiThreadMessage,
  ThreadMessages: ThreadMessagesBody,
  ThreadDeleted,
  UserDeleted,
  CloudEvent,
  CloudEventBatch: EventBatch,
  EventsAccepted,
  CreateMemoryRequest: CreateMemoryBody,
  MemoryCreated,
  MemoryList: MemoryListBody,
  MemorySearchResult: MemorySearchBody,
  MemoryDeleted,
  UsageStats: UsageStatsBody,
  TenantUsage: TenantUsageBody,
  StatsSeries: StatsSeriesBody,
  ApiKey: ApiKeyView,
  ApiKeyList: ApiKeyListBody,
  CreateApiKeyRequest: CreateKeyBody,
  ApiKeyCreated,
  ApiKeyRevoked,
  TenantList: TenantListBody,
  TenantLimits: TenantLimitsView,
  TenantLimitsUpdate: TenantLimitsBody,
  HealthStatus,
  Readiness,
};
type Component = keyof typeof COMPONENTS;

const ref = (name: Component) => ({ $ref: `#/components/schemas/${name}` });

const toJson = (value: z.ZodType) =>
  z.toJSONSchema(value, { target: "draft-2020-12", unrepresentable: "any", io: "input" }) as Json;

/** The component schemas, each other named schema they hold as a `$ref`. */
function componentSchemas(): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENTS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: "draft-2020-12",
    unrepresentable: "any",
    io: "input",
    uri: (id) => `#/components/schemas/${id}`,
  });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $schema: _schema, $id: _id, ...rest } = schema as Json;
      return [id, rest];
    }),
  );
}

interface Parameter {
  name: string;
  in: "path" | "query" | "header";
  required: boolean;
  description?: string;
  schema: Json;
}

/** Query parameters from a zod object schema (its fields, their descriptions and defaults). */
function queryParameters(value: z.ZodObject): Parameter[] {
  const json = toJson(value) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => {
    const { description, ...schema } = property;
    return {
      name,
      in: "query",
      required: json.required?.includes(name) ?? false,
      ...(typeof description === "string" ? { description } : {}),
      schema,
    };
  });
}

const ID_SCHEMA = { type: "string", pattern: ID_PATTERN.source };
const pathParameter = (name: string, description: string, schema: Json = ID_SCHEMA): Parameter => ({
  name,
  in: "path",
  required: true,
  description,
  schema,
});
const header = (name: string, description: string, schema: Json = { type: "string" }): Parameter => ({
  name,
  in: "header",
  required: false,
  description,
  schema,
});

const REQUEST_ID = header(
  "x-request-id",
  "your id for the request (1-200 letters, digits, `_ . : -`), echoed in the x-request-id response header; one is made when absent",
  ID_SCHEMA,
);

/** What an operation answers. */
interface Answer {
  description: string;
  /** A named schema (JSON), or `text/*` content with a plain string schema. */
  schema?: Component;
  text?: { type: string; description?: string };
  /** Another media type next to JSON (SSE). */
  stream?: string;
  /** The named schema of each SSE `data:` line (JSON). */
  lines?: Component;
  headers?: string[];
}

interface Operation {
  method: Method;
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  /** No key needed. */
  open?: boolean;
  parameters?: Parameter[];
  body?: { schema: Component | Json; required?: boolean; types?: string[] };
  answers: Record<number, Answer>;
  /** Error statuses besides 400 and 431, which any request can be answered with. */
  errors?: number[];
}

/** The errors of a route behind a key (401, 403 scope, 429 rate, 503 overloaded or unavailable). */
const KEYED = [401, 403, 429, 503];
/** Where the tightest tokens-per-day quota stands (only when one applies); also on a 429 for a quota. */
const TOKEN_HEADERS = [
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-tokens",
];
/** Headers of the routes that count a request rate and check the spend quotas (only for limits that apply). */
const RATE_HEADERS = [
  "x-ratelimit-limit-requests",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-reset-requests",
  ...TOKEN_HEADERS,
];
const SSE_DESCRIPTION =
  "Server-Sent Events: `id:` is the event's RUN_EVENTS sequence (resume with Last-Event-ID), `data:` one RunEvent JSON " +
  "(run-started, step-started, delta, tool-called, tool-result, usage, run-finished); the stream ends after run-finished";

const OPERATIONS: Operation[] = [
  {
    method: "post",
    path: "/v1/chat/completions",
    operationId: "createChatCompletion",
    tag: "chat",
    summary: "OpenAI-compatible chat completion",
    description:
      "`model` names an agent, a configured model or a tier. With `stream: true` the answer is SSE chunks " +
      "(`chat.completion.chunk`) ending in `data: [DONE]`; a failure after the first chunk is an SSE error event.",
    parameters: [
      header(
        "x-thread-id",
        "continue a server-side thread: only the messages after the last assistant message are new",
      ),
    ],
    body: { schema: "ChatCompletionRequest" },
    answers: {
      200: {
        description: "the completion, or its chunks as SSE with `stream: true`",
        schema: "ChatCompletion",
        stream: "data: one chat.completion.chunk JSON per event, then `data: [DONE]`",
        headers: ["x-run-id", "x-thread-id", ...RATE_HEADERS],
      },
    },
    errors: [...KEYED, 404, 413, 415, 504],
  },
  {
    method: "get",
    path: "/v1/models",
    operationId: "listModels",
    tag: "chat",
    summary: "Agents open to the key's tenant, then the models the model proxy serves",
    answers: { 200: { description: "the agents and models", schema: "ModelList" } },
    errors: KEYED,
  },
  {
    method: "get",
    path: "/v1/models/{id}",
    operationId: "getModel",
    tag: "chat",
    summary: "One agent or model",
    parameters: [pathParameter("id", "agent or model name", { type: "string", minLength: 1 })],
    answers: { 200: { description: "the agent or model", schema: "Model" } },
    errors: [...KEYED, 404],
  },
  {
    method: "post",
    path: "/v1/embeddings",
    operationId: "createEmbeddings",
    tag: "chat",
    summary: "OpenAI-compatible embeddings through the model proxy (cached per tenant)",
    body: { schema: "EmbeddingsRequest" },
    answers: {
      200: {
        description: "one embedding per input, with usage",
        schema: "EmbeddingList",
        headers: RATE_HEADERS,
      },
    },
    errors: [...KEYED, 404, 413, 415, 504],
  },
  {
    method: "post",
    path: "/v1/runs",
    operationId: "createRun",
    tag: "runs",
    summary: "Start a run",
    description:
      "202 with the queued run; with `wait: true` 200 with the finished run; with `stream: true` 200 with its events as SSE.",
    parameters: [
      header(
        "idempotency-key",
        "a retried request with the same key (within 2 minutes) answers with the same run instead of starting another",
        { type: "string", pattern: "^[\\x21-\\x7e]{1,200}$" },
      ),
    ],
    body: { schema: "CreateRunRequest" },
    answers: {
      200: {
        description: "the finished run (`wait`), or its events as SSE (`stream`)",
        schema: "RunResult",
        stream: SSE_DESCRIPTION,
        lines: "RunEvent",
        headers: ["x-run-id", ...RATE_HEADERS],
      },
      202: {
        description: "queued",
        schema: "RunAccepted",
        headers: ["location", "x-run-id", ...RATE_HEADERS],
      },
    },
    errors: [...KEYED, 404, 413, 415, 504],
  },
  {
    method: "get",
    path: "/v1/runs",
    operationId: "listRuns",
    tag: "runs",
    summary: "The tenant's runs, newest first",
    parameters: queryParameters(ListRunsQuery),
    answers: { 200: { description: "a page of runs", schema: "RunList" } },
    errors: KEYED,
  },
  {
    method: "get",
    path: "/v1/runs/{id}",
    operationId: "getRun",
    tag: "runs",
    summary: "One run",
    parameters: [pathParameter("id", "run id")],
    answers: { 200: { description: "the run", schema: "Run" } },
    errors: [...KEYED, 404],
  },
  {
    method: "post",
    path: "/v1/runs/{id}/cancel",
    operationId: "cancelRun",
    tag: "runs",
    summary: "Cancel a run (and the runs it delegated to)",
    parameters: [pathParameter("id", "run id")],
    answers: { 200: { description: "the run's status after the cancel", schema: "RunCancelled" } },
    errors: [...KEYED, 404],
  },
  {
    method: "get",
    path: "/v1/runs/{id}/events",
    operationId: "streamRunEvents",
    tag: "runs",
    summary: "A run's events as SSE, resumable",
    parameters: [
      pathParameter("id", "run id"),
      header("last-event-id", "resume after this event (the `id:` of the last event seen)", {
        type: "string",
        pattern: "^[0-9]{1,16}$",
      }),
      {
        name: "after",
        in: "query",
        required: false,
        description: "resume after this event, for clients that cannot send Last-Event-ID",
        schema: { type: "integer", minimum: 0 },
      },
    ],
    answers: {
      200: {
        description: "the run's events",
        text: { type: "text/event-stream", description: SSE_DESCRIPTION },
        lines: "RunEvent",
      },
    },
    errors: [...KEYED, 404],
  },
  {
    method: "get",
    path: "/v1/threads/{id}/messages",
    operationId: "listThreadMessages",
    tag: "threads",
    summary: "Messages of a thread, oldest first",
    parameters: [pathParameter("id", "thread id"), ...queryParameters(ThreadMessagesQuery)],
    answers: { 200: { description: "the thread's messages", schema: "ThreadMessages" } },
    errors: [...KEYED, 404],
  },
  {
    method: "delete",
    path: "/v1/threads/{id}",
    operationId: "deleteThread",
    tag: "threads",
    summary: "Forget a thread: its messages, summary, runs' content, run events and caches",
    description:
      "Its runs are cancelled if still going, then scrubbed: request, output, plan, error text, thread and user go, " +
      "status and token and cost totals stay; their steps lose their messages, their events are purged, and the " +
      "model and tool caches and records of their calls are dropped. 404 when the tenant has no such thread.",
    parameters: [pathParameter("id", "thread id")],
    answers: { 200: { description: "what was forgotten", schema: "ThreadDeleted" } },
    errors: [...KEYED, 404],
  },
  {
    method: "delete",
    path: "/v1/users/{id}",
    operationId: "deleteUser",
    tag: "users",
    summary: "Forget an end user: threads, runs, memories, documents, profile and caches",
    description:
      "Everything of the tenant's end user `id` (the `user` of chat and runs requests): every thread as " +
      "DELETE /v1/threads/{id} does, the user's runs outside threads, long-term memories and documents with " +
      "their embeddings, and the model and tool results cached for the user. Usage totals stay, without content. " +
      "404 when nothing of the user is stored.",
    parameters: [
      pathParameter("id", "end user id (URL-encoded)", { type: "string", minLength: 1, maxLength: 200 }),
    ],
    answers: { 200: { description: "what was forgotten", schema: "UserDeleted" } },
    errors: [...KEYED, 404],
  },
  {
    method: "post",
    path: "/v1/events",
    operationId: "publishEvents",
    tag: "events",
    summary: "CloudEvents into the EVENTS stream",
    description:
      "Structured mode (`application/cloudevents+json` or `application/json`: the body is the event), batched mode " +
      "(`application/cloudevents-batch+json` or a JSON array) or binary mode (`ce-*` headers, the body is the data). " +
      "202 once JetStream stored every event.",
    parameters: [
      header("ce-specversion", "binary mode: `1.0` (the other attributes come as ce-* headers)", {
        type: "string",
        enum: ["1.0"],
      }),
      header("ce-id", "binary mode: the event id"),
      header("ce-source", "binary mode: the event source"),
      header("ce-type", "binary mode: the event type"),
      header("ce-subject", "binary mode: the event subject"),
      header("ce-time", "binary mode: the event time (RFC 3339)"),
    ],
    body: {
      schema: { oneOf: [ref("CloudEvent"), ref("CloudEventBatch")] },
      types: ["application/json", "application/cloudevents+json", "application/cloudevents-batch+json"],
    },
    answers: { 202: { description: "stored", schema: "EventsAccepted", headers: RATE_HEADERS } },
    errors: [...KEYED, 413, 415],
  },
  {
    method: "post",
    path: "/v1/memories",
    operationId: "createMemory",
    tag: "memories",
    summary: "Add a long-term memory (or replace the one with the same id)",
    body: { schema: "CreateMemoryRequest" },
    answers: { 201: { description: "stored", schema: "MemoryCreated" } },
    errors: [...KEYED, 413, 415],
  },
  {
    method: "get",
    path: "/v1/memories",
    operationId: "listMemories",
    tag: "memories",
    summary: "A user's own memories (without user: the tenant's shared ones, admin keys), newest first",
    parameters: queryParameters(ListMemoriesQuery),
    answers: { 200: { description: "a page of memories", schema: "MemoryList" } },
    errors: KEYED,
  },
  {
    method: "get",
    path: "/v1/memories/search",
    operationId: "searchMemories",
    tag: "memories",
    summary: "Search a user's memories and the tenant's shared ones (without user: every user's, admin keys)",
    parameters: queryParameters(SearchMemoriesQuery),
    answers: { 200: { description: "the best matches", schema: "MemorySearchResult" } },
    errors: KEYED,
  },
  {
    method: "delete",
    path: "/v1/memories/{id}",
    operationId: "deleteMemory",
    tag: "memories",
    summary: "Delete a memory of a user (without user: a shared one, admin keys)",
    parameters: [
      pathParameter("id", "memory id", { type: "string", pattern: MEMORY_ID.source }),
      ...queryParameters(MemoryOwnerQuery),
    ],
    answers: { 200: { description: "deleted", schema: "MemoryDeleted" } },
    errors: [...KEYED, 404],
  },
  {
    method: "get",
    path: "/v1/stats",
    operationId: "getUsageStats",
    tag: "stats",
    summary: "Usage and cost of the tenant over the last days",
    parameters: queryParameters(StatsQuery),
    answers: { 200: { description: "usage by model, tool and agent", schema: "UsageStats" } },
    errors: KEYED,
  },
  {
    method: "get",
    path: "/v1/stats/series",
    operationId: "getStatsSeries",
    tag: "stats",
    summary: "The dashboard's time series, hotspots and cache savings",
    parameters: queryParameters(SeriesQuery),
    answers: { 200: { description: "series over the range", schema: "StatsSeries" } },
    errors: KEYED,
  },
  {
    method: "get",
    path: "/v1/admin/keys",
    operationId: "adminListKeys",
    tag: "admin",
    summary: "API keys (of one tenant with tenant=)",
    parameters: queryParameters(KeysQuery),
    answers: { 200: { description: "the keys (never the keys themselves)", schema: "ApiKeyList" } },
    errors: KEYED,
  },
  {
    method: "post",
    path: "/v1/admin/keys",
    operationId: "adminCreateKey",
    tag: "admin",
    summary: "Make an API key for a tenant",
    body: { schema: "CreateApiKeyRequest" },
    answers: { 201: { description: "the new key, shown this once", schema: "ApiKeyCreated" } },
    errors: [...KEYED, 413, 415],
  },
  {
    method: "delete",
    path: "/v1/admin/keys/{id}",
    operationId: "adminRevokeKey",
    tag: "admin",
    summary: "Revoke an API key",
    parameters: [pathParameter("id", "key id", { type: "string", minLength: 1 })],
    answers: { 200: { description: "revoked", schema: "ApiKeyRevoked" } },
    errors: [...KEYED, 404],
  },
  {
    method: "get",
    path: "/v1/admin/tenants",
    operationId: "adminListTenants",
    tag: "admin",
    summary: "Tenants, their active keys and stored limits",
    answers: { 200: { description: "the tenants", schema: "TenantList" } },
    errors: KEYED,
  },
  ...(["get", "patch", "delete"] as const).map(
    (method): Operation => ({
      method,
      path: "/v1/admin/tenants/{tenant}/limits",
      operationId: {
        get: "adminGetTenantLimits",
        patch: "adminUpdateTenantLimits",
        delete: "adminClearTenantLimits",
      }[method],
      tag: "admin",
      summary: {
        get: "A tenant's stored limits",
        patch: "Set a tenant's limits (null removes one; the others stay)",
        delete: "Remove every stored limit of a tenant (the configured defaults apply)",
      }[method],
      parameters: [tenantParameter()],
      ...(method === "patch" ? { body: { schema: "TenantLimitsUpdate" as const } } : {}),
      answers: { 200: { description: "the tenant's stored limits", schema: "TenantLimits" } },
      errors: method === "patch" ? [...KEYED, 413, 415] : KEYED,
    }),
  ),
  {
    method: "get",
    path: "/v1/admin/tenants/{tenant}/usage",
    operationId: "adminGetTenantUsage",
    tag: "admin",
    summary: "A tenant's usage and cost over the last days",
    parameters: [tenantParameter(), ...queryParameters(UsageQuery)],
    answers: { 200: { description: "usage by model, tool and agent", schema: "TenantUsage" } },
    errors: KEYED,
  },
  {
    method: "get",
    path: "/healthz",
    operationId: "getHealth",
    tag: "operations",
    summary: "The process is alive",
    open: true,
    answers: { 200: { description: "alive", schema: "HealthStatus" } },
  },
  {
    method: "get",
    path: "/readyz",
    operationId: "getReadiness",
    tag: "operations",
    summary: "Every dependency (NATS, Postgres) answers",
    open: true,
    answers: { 200: { description: "ready", schema: "Readiness" } },
    errors: [503],
  },
  {
    method: "get",
    path: "/openapi.json",
    operationId: "getOpenApiDocument",
    tag: "operations",
    summary: "This document",
    open: true,
    answers: { 200: { description: "OpenAPI 3.1", text: { type: "application/json" } } },
  },
  {
    method: "get",
    path: "/docs",
    operationId: "getApiDocs",
    tag: "operations",
    summary: "This document as a page to read",
    open: true,
    answers: { 200: { description: "HTML page", text: { type: "text/html" } } },
  },
  {
    method: "get",
    path: "/docs/app.js",
    operationId: "getApiDocsScript",
    tag: "operations",
    summary: "The script of the API page",
    open: true,
    answers: { 200: { description: "JavaScript", text: { type: "text/javascript" } } },
  },
  ...(
    [
      ["/dashboard", "getDashboard", "The dashboard page", "text/html"],
      ["/dashboard/app.js", "getDashboardScript", "The dashboard's script", "text/javascript"],
      ["/dashboard/uplot.js", "getDashboardChartScript", "The chart library (uPlot)", "text/javascript"],
      ["/dashboard/uplot.css", "getDashboardChartStyle", "The chart library's stylesheet", "text/css"],
    ] as const
  ).map(
    ([path, operationId, summary, type]): Operation => ({
      method: "get",
      path,
      operationId,
      tag: "dashboard",
      summary,
      description: "The page reads /v1/stats/series with the key given on the page.",
      open: true,
      answers: { 200: { description: summary, text: { type } } },
    }),
  ),
];

function tenantParameter(): Parameter {
  return pathParameter("tenant", "tenant id", { type: "string", pattern: TENANT_ID_PATTERN.source });
}

const TAGS = [
  ["chat", "OpenAI-compatible chat completions, models and embeddings"],
  ["runs", "Native runs API: start, follow (SSE), list, cancel"],
  ["threads", "Server-side conversation threads"],
  ["events", "CloudEvents in, agent runs out"],
  ["memories", "Long-term memories of end users"],
  ["users", "End users of a tenant: forgetting one"],
  ["stats", "Usage, cost and the dashboard's data"],
  ["admin", "Tenants, keys, limits and usage (admin keys)"],
  ["operations", "Probes and this document"],
  ["dashboard", "The dashboard page and its assets"],
] as const;

const RESPONSE_HEADERS: Record<string, { description: string; schema: Json }> = {
  "x-request-id": {
    description: "the request's id (yours from x-request-id, or a new one)",
    schema: { type: "string" },
  },
  "x-run-id": { description: "the run that answers the request", schema: { type: "string" } },
  "x-thread-id": { description: "the thread the turn was stored in", schema: { type: "string" } },
  location: { description: "the run's URL", schema: { type: "string" } },
  "retry-after": { description: "seconds to wait before retrying", schema: { type: "integer" } },
  "x-ratelimit-limit-requests": {
    description: "the tightest request rate that counted this request",
    schema: { type: "integer" },
  },
  "x-ratelimit-remaining-requests": {
    description: "requests left in its window",
    schema: { type: "integer" },
  },
  "x-ratelimit-reset-requests": {
    description: "until that window holds none of the requests counted now (`1s`, `1m30s`)",
    schema: { type: "string" },
  },
  "x-ratelimit-limit-tokens": {
    description:
      "the tightest tokens-per-day quota of the user, the tenant or the runtime (only when one is set)",
    schema: { type: "integer" },
  },
  "x-ratelimit-remaining-tokens": {
    description:
      "tokens left of it today (UTC), never below 0; 0 on a 429 for it. Usage totals are re-read at most " +
      "every 5 s (and folded in from the USAGE stream), so this may lag the last seconds' usage",
    schema: { type: "integer" },
  },
  "x-ratelimit-reset-tokens": {
    description: "until the next UTC midnight, when the day's count starts again (`23h59m59s`)",
    schema: { type: "string" },
  },
};

const headerRefs = (names: readonly string[]) =>
  Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }]));

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "invalid request: `error.param` and `error.details` name the fields (a NUL or lone surrogate anywhere is one too)",
  401: "no key, or an unknown or revoked one",
  403: "the key lacks the scope (or tenant) this needs",
  404: "not found",
  413: "body too large",
  415: "unsupported content type (JSON only)",
  429: "a rate limit or quota is reached (Retry-After says when to retry)",
  431: "request headers too large",
  503: "overloaded, draining or a dependency is unavailable (Retry-After says when to retry)",
  504: "the run did not finish in time",
};

/** An SSE answer's `data:` lines as JSON of a named schema (JSON Schema `contentSchema`). */
const linesOf = (answer: Answer): Json =>
  answer.lines ? { contentMediaType: "application/json", contentSchema: ref(answer.lines) } : {};

function responsesOf(operation: Operation): Json {
  const responses: Json = {};
  for (const [status, answer] of Object.entries(operation.answers)) {
    const content: Json = {};
    if (answer.schema) content["application/json"] = { schema: ref(answer.schema) };
    if (answer.stream)
      content["text/event-stream"] = {
        schema: { type: "string", description: answer.stream, ...linesOf(answer) },
      };
    if (answer.text) {
      content[answer.text.type] = {
        schema: {
          type: "string",
          ...(answer.text.description ? { description: answer.text.description } : {}),
          ...linesOf(answer),
        },
      };
    }
    responses[status] = {
      description: answer.description,
      headers: headerRefs(["x-request-id", ...(answer.headers ?? [])]),
      content,
    };
  }
  for (const status of [400, 431, ...(operation.errors ?? [])].sort()) {
    responses[status] = { $ref: `#/components/responses/Error${status}` };
  }
  return responses;
}

function operationObject(operation: Operation): Json {
  const body = operation.body;
  return {
    operationId: operation.operationId,
    summary: operation.summary,
    ...(operation.description ? { description: operation.description } : {}),
    tags: [operation.tag],
    ...(operation.open ? { security: [] } : {}),
    parameters: [...(operation.parameters ?? []), { $ref: "#/components/parameters/RequestId" }],
    ...(body
      ? {
          requestBody: {
            required: body.required ?? true,
            content: Object.fromEntries(
              (body.types ?? ["application/json"]).map((type) => [
                type,
                { schema: typeof body.schema === "string" ? ref(body.schema as Component) : body.schema },
              ]),
            ),
          },
        }
      : {}),
    responses: responsesOf(operation),
  };
}

/** Every operation the document lists, as `METHOD /path` with Fastify's `:param` syntax. */
export function documentedRoutes(): string[] {
  return OPERATIONS.map(
    (operation) => `${operation.method.toUpperCase()} ${operation.path.replaceAll(/\{([^}]+)\}/g, ":$1")}`,
  );
}

/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the same zod schemas that validate
 * requests and describe answers. `serverUrl` is where this ingress was reached.
 */
export function openApiDocument(options: { serverUrl?: string } = {}) {
  const paths: Record<string, Record<string, Json>> = {};
  for (const operation of OPERATIONS) {
    paths[operation.path] ??= {};
    (paths[operation.path] as Record<string, Json>)[operation.method] = operationObject(operation);
  }
  const errorStatuses = [
    ...new Set(OPERATIONS.flatMap((operation) => [400, 431, ...(operation.errors ?? [])])),
  ];
  return {
    openapi: "3.1.0",
    info: {
      title: "Agent runtime API",
      version: "1.0.0",
      description:
        "Chat (OpenAI-compatible), runs, events, memories, stats and admin. Authenticate with `Authorization: Bearer <api key>`. " +
        "Errors are JSON `{ error: { type, message, code, param, details } }`.",
    },
    servers: [{ url: options.serverUrl ?? "http://127.0.0.1:8080", description: "this ingress" }],
    tags: TAGS.map(([name, description]) => ({ name, description })),
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "an API key of a tenant" } },
      parameters: { RequestId: REQUEST_ID },
      headers: RESPONSE_HEADERS,
      responses: Object.fromEntries(
        errorStatuses.sort().map((status) => [
          `Error${status}`,
          {
            description: ERROR_DESCRIPTIONS[status] ?? "error",
            headers: headerRefs(
              status === 429
                ? ["x-request-id", "retry-after", ...TOKEN_HEADERS]
                : status === 503
                  ? ["x-request-id", "retry-after"]
                  : ["x-request-id"],
            ),
            content: { "application/json": { schema: ref("Error") } },
          },
        ]),
      ),
      schemas: componentSchemas(),
    },
  };
}
