import { randomUUID } from "node:crypto";
import { ID_PATTERN } from "@agent-runtime/contracts";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { TokenStatus } from "./quotas.js";
import type { Release } from "./rate-limits.js";

/** Headers a browser on another origin may read (CORS `Access-Control-Expose-Headers`). */
const EXPOSED_HEADERS = [
  "x-request-id",
  "x-run-id",
  "x-thread-id",
  "retry-after",
  "x-ratelimit-limit-requests",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-reset-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-tokens",
].join(", ");

const ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOWED_HEADERS =
  "authorization, content-type, idempotency-key, last-event-id, x-thread-id, x-request-id, x-client-request-id, x-stainless-lang, x-stainless-package-version, x-stainless-os, x-stainless-arch, x-stainless-runtime, x-stainless-runtime-version, x-stainless-retry-count, x-stainless-timeout, openai-organization, openai-project";

/**
 * The id of a request: the caller's own `x-request-id` or `x-client-request-id` when it is a
 * plain token (letters, digits, `_ . : -`, at most 200), else a new one.
 */
export function requestIdOf(request: FastifyRequest): string {
  for (const name of ["x-request-id", "x-client-request-id"]) {
    const value = request.headers[name];
    if (typeof value === "string" && ID_PATTERN.test(value)) return value;
  }
  return `req_${randomUUID().replaceAll("-", "")}`;
}

/** Whether `origin` may call the API from a browser, and the allow-origin value to answer with. */
function allowedOrigin(origins: readonly string[], origin: string | undefined): string | undefined {
  if (origins.length === 0) return undefined;
  if (origins.includes("*")) return "*";
  return origin && origins.includes(origin) ? origin : undefined;
}

/**
 * Headers every response carries: `x-request-id` (the SDKs' `requestID`) and, for allowed origins,
 * CORS. They are set on the raw response, so streamed (SSE) answers carry them too; a preflight
 * `OPTIONS` is answered 204 (with CORS headers only for an allowed origin).
 */
export function registerResponseHeaders(app: FastifyInstance, options: { corsOrigins: readonly string[] }) {
  app.addHook("onRequest", async (request, reply) => {
    reply.raw.setHeader("x-request-id", requestIdOf(request));
    const origin = typeof request.headers.origin === "string" ? request.headers.origin : undefined;
    const allowed = allowedOrigin(options.corsOrigins, origin);
    if (options.corsOrigins.length > 0) reply.raw.setHeader("vary", "origin");
    if (!allowed) return;
    reply.raw.setHeader("access-control-allow-origin", allowed);
    reply.raw.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
  });
  // a preflight is answered here, before routing: no route of the API takes OPTIONS
  app.addHook("onRequest", async (request, reply) => {
    if (request.method !== "OPTIONS") return;
    const origin = typeof request.headers.origin === "string" ? request.headers.origin : undefined;
    reply.header("allow", ALLOWED_METHODS);
    if (allowedOrigin(options.corsOrigins, origin)) {
      const asked = request.headers["access-control-request-headers"];
      reply
        .header("access-control-allow-methods", ALLOWED_METHODS)
        .header("access-control-allow-headers", typeof asked === "string" && asked ? asked : ALLOWED_HEADERS)
        .header("access-control-max-age", "600");
    }
    return reply.code(204).send();
  });
}

/** OpenAI's duration format for reset headers: `20ms`, `1s`, `6m0s`, `23h59m59s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h${Math.floor(seconds / 60) % 60}m${seconds % 60}s`;
}

/**
 * `x-ratelimit-*-requests` of the tightest request rate that counted this request and
 * `x-ratelimit-*-tokens` of the tightest tokens-per-day quota (each absent when no such limit applies).
 */
export function setRateHeaders(reply: FastifyReply, release: Pick<Release, "rate" | "tokens">): void {
  const { rate, tokens } = release;
  if (rate) {
    reply.raw.setHeader("x-ratelimit-limit-requests", String(rate.limit));
    reply.raw.setHeader("x-ratelimit-remaining-requests", String(rate.remaining));
    reply.raw.setHeader("x-ratelimit-reset-requests", formatDuration(rate.resetMs));
  }
  setTokenHeaders(reply, tokens);
}

/**
 * `x-ratelimit-*-tokens` of the tightest tokens-per-day quota, also on a 429 refused for a quota.
 * `remaining` comes from totals re-read at most every 5 s, so it may lag recent usage by that much.
 */
export function setTokenHeaders(reply: FastifyReply, tokens: TokenStatus | undefined): void {
  if (!tokens) return;
  reply.raw.setHeader("x-ratelimit-limit-tokens", String(tokens.limit));
  reply.raw.setHeader("x-ratelimit-remaining-tokens", String(tokens.remaining));
  reply.raw.setHeader("x-ratelimit-reset-tokens", formatDuration(tokens.resetMs));
}
