import {
  type ErrorCode,
  httpStatusFor,
  RuntimeError,
  toWireError,
  type WireError,
  zodIssues,
} from "@agent-runtime/contracts";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";

/** OpenAI-style error type names, so OpenAI SDKs surface our errors naturally. */
function typeFor(code: ErrorCode): string {
  switch (code) {
    case "validation":
      return "invalid_request_error";
    case "unauthorized":
      return "authentication_error";
    case "forbidden":
    case "guardrail_blocked":
      return "permission_error";
    case "not_found":
      return "not_found_error";
    case "rate_limited":
      return "rate_limit_error";
    case "overloaded":
    case "unavailable":
      return "service_unavailable_error";
    // both 504: an upstream ran out of its own time limit, or the request's deadline passed
    case "timeout":
    case "deadline_exceeded":
      return code;
    default:
      return code === "internal" ? "server_error" : code;
  }
}

export function errorBody(wire: WireError) {
  const issues = Array.isArray(wire.details) ? (wire.details as { path?: string }[]) : undefined;
  return {
    error: {
      type: typeFor(wire.code),
      code: wire.code,
      message: wire.message,
      param: issues?.[0]?.path ?? null,
      ...(wire.details === undefined ? {} : { details: wire.details }),
    },
  };
}

export function sendError(reply: FastifyReply, wire: WireError): FastifyReply {
  const status = httpStatusFor(wire.code);
  if (wire.retryAfterMs !== undefined || status === 429 || status === 503) {
    reply.header("retry-after", String(Math.max(1, Math.ceil((wire.retryAfterMs ?? 1000) / 1000))));
  }
  return reply.code(status).send(errorBody(wire));
}

/** Validates a body with a schema; a failure is a 400 naming each field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    const summary = issues
      .slice(0, 5)
      .map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message))
      .join("; ");
    throw new RuntimeError("validation", `invalid request body: ${summary}`, { details: issues });
  }
  return parsed.data;
}

/**
 * An error that only HTTP knows (405, 415, 431, a malformed URL, …): no wire code
 * of its own, same documented body shape.
 */
export interface HttpOnlyError {
  type: string;
  code: string;
  message: string;
}

export function httpErrorBody(error: HttpOnlyError) {
  return { error: { type: error.type, code: error.code, message: error.message, param: null } };
}

export function sendHttpError(reply: FastifyReply, status: number, error: HttpOnlyError): FastifyReply {
  return reply.code(status).send(httpErrorBody(error));
}

/** What Fastify's own body-parsing errors mean to a client. */
function bodyParseError(code: string | undefined): { status: number; error: HttpOnlyError } | undefined {
  switch (code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return {
        status: 413,
        error: { type: "payload_too_large", code: "payload_too_large", message: "request body is too large" },
      };
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return {
        status: 415,
        error: {
          type: "invalid_request_error",
          code: "unsupported_media_type",
          message: "content-type must be application/json",
        },
      };
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return {
        status: 400,
        error: {
          type: "invalid_request_error",
          code: "validation",
          message: "invalid request body: the body is empty but content-type is application/json",
        },
      };
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return {
        status: 400,
        error: {
          type: "invalid_request_error",
          code: "validation",
          message: "invalid request body: not valid JSON",
        },
      };
    default:
      return undefined;
  }
}

/**
 * The one error handler: typed errors keep their code; Fastify's own client errors
 * keep their 4xx status; anything else is a plain 500. Never a stack trace.
 */
export function handleError(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
  logger: { error(object: object, message?: string): void },
  unrouted?: (request: FastifyRequest, reply: FastifyReply) => FastifyReply,
) {
  // a request for no route whose body did not parse: it is still a 404 or 405, not a body error
  if (request.is404 && unrouted) return unrouted(request, reply);
  const fastifyError = error as FastifyError;
  const known = bodyParseError(fastifyError.code);
  if (known) return sendHttpError(reply, known.status, known.error);
  if (error instanceof SyntaxError) {
    return sendError(reply, {
      code: "validation",
      message: "invalid request body: not valid JSON",
      retryable: false,
    });
  }
  if (
    !(error instanceof RuntimeError) &&
    typeof fastifyError.statusCode === "number" &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    const status = fastifyError.statusCode;
    return sendHttpError(reply, status, {
      type: status === 413 ? "payload_too_large" : "invalid_request_error",
      code: status === 413 ? "payload_too_large" : "validation",
      message: `invalid request: ${error.message}`.slice(0, 500),
    });
  }
  const wire = toWireError(error);
  // a typed error is reported by whoever raised it (e.g. a failed run); anything else is our bug
  if (wire.code === "internal" && !(error instanceof RuntimeError))
    logger.error({ err: error, route: request.routeOptions.url }, "request failed");
  return sendError(reply, wire);
}
