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

/** The one error handler: typed errors keep their code; anything else is a plain 500. */
export function handleError(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
  logger: { error(object: object, message?: string): void },
) {
  const fastifyError = error as FastifyError;
  if (fastifyError.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return sendError(reply, {
      code: "payload_too_large",
      message: "request body is too large",
      retryable: false,
    });
  }
  if (fastifyError.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
    return sendError(reply, {
      code: "validation",
      message: "content-type must be application/json",
      retryable: false,
    });
  }
  if (
    fastifyError.statusCode === 400 ||
    error instanceof SyntaxError ||
    fastifyError.code?.startsWith("FST_ERR_CTP")
  ) {
    return sendError(reply, {
      code: "validation",
      message: `invalid request body: ${error.message}`,
      retryable: false,
    });
  }
  const wire = toWireError(error);
  // a typed error is reported by whoever raised it (e.g. a failed run); anything else is our bug
  if (wire.code === "internal" && !(error instanceof RuntimeError))
    logger.error({ err: error, route: request.routeOptions.url }, "request failed");
  return sendError(reply, wire);
}
