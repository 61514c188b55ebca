import { ChatCompletionRequest, HttpErrorBody, RunRecord } from "@agent-runtime/contracts";
import { z } from "zod";
import { CreateRunBody, EventsBody } from "./api-schemas.js";

const schema = (value: z.ZodType) =>
  z.toJSONSchema(value, { target: "draft-2020-12", unrepresentable: "any", io: "input" });

/** The OpenAPI document, generated from the same zod schemas that validate requests. */
export function openApiDocument() {
  const error = { description: "error", content: { "application/json": { schema: schema(HttpErrorBody) } } };
  const errors = { 400: error, 401: error, 403: error, 404: error, 413: error, 429: error, 503: error };
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
          summary: "OpenAI-compatible chat completion; model names an agent",
          requestBody: json(ChatCompletionRequest),
          responses: { 200: { description: "chat.completion or SSE chunks" }, ...errors },
        },
      },
      "/v1/models": {
        get: { summary: "agents visible to the key", responses: { 200: { description: "list" }, ...errors } },
      },
      "/v1/runs": {
        post: {
          summary: "start a run (202, or the result with wait)",
          requestBody: json(CreateRunBody),
          responses: { 200: { description: "finished run" }, 202: { description: "queued" }, ...errors },
        },
        get: {
          summary: "list runs (thread_id, status, agent, limit, cursor)",
          responses: { 200: { description: "list" }, ...errors },
        },
      },
      "/v1/runs/{id}": {
        get: {
          summary: "one run",
          responses: {
            200: { description: "run", content: { "application/json": { schema: schema(RunRecord) } } },
            ...errors,
          },
        },
      },
      "/v1/runs/{id}/cancel": {
        post: { summary: "cancel a run", responses: { 200: { description: "status" }, ...errors } },
      },
      "/v1/runs/{id}/events": {
        get: {
          summary: "SSE of run events, resumable with Last-Event-ID",
          responses: { 200: { description: "text/event-stream" }, ...errors },
        },
      },
      "/v1/threads/{id}/messages": {
        get: { summary: "messages of a thread", responses: { 200: { description: "list" }, ...errors } },
      },
      "/v1/threads/{id}": {
        delete: {
          summary: "delete a thread and its messages",
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
