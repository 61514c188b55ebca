import { ChatCompletionRequest, EmbeddingsRequest, HttpErrorBody, RunRecord } from "@agent-runtime/contracts";
import { z } from "zod";
import { CreateRunBody, EventsBody, ListRunsQuery, ThreadMessagesQuery } from "./api-schemas.js";

const schema = (value: z.ZodType) =>
  z.toJSONSchema(value, { target: "draft-2020-12", unrepresentable: "any", io: "input" });

/** Query parameters from a zod object schema. */
function queryParameters(value: z.ZodObject) {
  const json = schema(value) as { properties?: Record<string, object>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: "query",
    required: json.required?.includes(name) ?? false,
    schema: property,
  }));
}

const idParameter = {
  name: "id",
  in: "path",
  required: true,
  schema: { type: "string", pattern: "^[A-Za-z0-9_.:-]{1,200}$" },
};

/** The OpenAPI document, generated from the same zod schemas that validate requests. */
export function openApiDocument() {
  const error = {
    description:
      "error: { error: { type, message, code, param, details } }; 429 and 503 carry Retry-After, 405 Allow. " +
      "A string holding NUL or a lone UTF-16 surrogate anywhere in the body, query or path is a 400 naming it in param.",
    content: { "application/json": { schema: schema(HttpErrorBody) } },
  };
  const errors = {
    400: error,
    401: error,
    403: error,
    404: error,
    405: error,
    413: error,
    415: error,
    429: error,
    431: error,
    503: error,
    504: error,
  };
  const json = (value: z.ZodType) => ({
    required: true,
    content: { "application/json": { schema: schema(value) } },
  });
  return {
    openapi: "3.1.0",
    info: { title: "Agent runtime API", version: "1.0.0" },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    security: [{ bearer: [] }],
    paths: {
      "/v1/chat/completions": {
        post: {
          summary: "OpenAI-compatible chat completion; model names an agent or a served model",
          parameters: [
            {
              name: "x-thread-id",
              in: "header",
              required: false,
              description:
                "continue a server-side thread: only the messages after the last assistant message are new",
              schema: { type: "string" },
            },
          ],
          requestBody: json(ChatCompletionRequest),
          responses: { 200: { description: "chat.completion or SSE chunks" }, ...errors },
        },
      },
      "/v1/models": {
        get: {
          summary: "agents visible to the key, then the models the model proxy serves",
          responses: { 200: { description: "list" }, ...errors },
        },
      },
      "/v1/models/{id}": {
        get: {
          summary: "one agent or model",
          parameters: [idParameter],
          responses: { 200: { description: "model" }, ...errors },
        },
      },
      "/v1/embeddings": {
        post: {
          summary: "OpenAI-compatible embeddings through the model proxy (cached per tenant)",
          requestBody: json(EmbeddingsRequest),
          responses: { 200: { description: "list of embeddings with usage" }, ...errors },
        },
      },
      "/v1/runs": {
        post: {
          summary: "start a run: 202 queued, the finished run with wait, or SSE of its events with stream",
          parameters: [
            {
              name: "idempotency-key",
              in: "header",
              required: false,
              description: "a retried request with the same key (within 2 minutes) returns the same run",
              schema: { type: "string", maxLength: 200 },
            },
          ],
          requestBody: json(CreateRunBody),
          responses: {
            200: { description: "finished run (wait) or text/event-stream (stream)" },
            202: { description: "queued; Location: /v1/runs/{id}" },
            ...errors,
          },
        },
        get: {
          summary: "list runs (thread_id, status, agent, limit, cursor)",
          parameters: queryParameters(ListRunsQuery),
          responses: { 200: { description: "list" }, ...errors },
        },
      },
      "/v1/runs/{id}": {
        get: {
          summary: "one run",
          parameters: [idParameter],
          responses: {
            200: { description: "run", content: { "application/json": { schema: schema(RunRecord) } } },
            ...errors,
          },
        },
      },
      "/v1/runs/{id}/cancel": {
        post: {
          summary: "cancel a run",
          parameters: [idParameter],
          responses: { 200: { description: "status" }, ...errors },
        },
      },
      "/v1/runs/{id}/events": {
        get: {
          summary: "SSE of run events, resumable with Last-Event-ID",
          parameters: [
            idParameter,
            { name: "last-event-id", in: "header", required: false, schema: { type: "integer" } },
          ],
          responses: { 200: { description: "text/event-stream" }, ...errors },
        },
      },
      "/v1/threads/{id}/messages": {
        get: {
          summary: "messages of a thread",
          parameters: [idParameter, ...queryParameters(ThreadMessagesQuery)],
          responses: { 200: { description: "list" }, ...errors },
        },
      },
      "/v1/threads/{id}": {
        delete: {
          summary: "delete a thread and its messages",
          parameters: [idParameter],
          responses: { 200: { description: "deleted" }, ...errors },
        },
      },
      "/v1/events": {
        post: {
          summary: "CloudEvents (one or a batch) into the EVENTS stream",
          requestBody: json(EventsBody),
          responses: { 202: { description: "stored" }, ...errors },
        },
      },
      "/v1/stats": {
        get: { summary: "usage of the tenant", responses: { 200: { description: "stats" }, ...errors } },
      },
    },
  };
}
