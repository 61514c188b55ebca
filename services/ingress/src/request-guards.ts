import type { Socket } from "node:net";
import { findUnstorable, RuntimeError } from "@agent-runtime/contracts";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { httpErrorBody, sendHttpError } from "./http-errors.js";

/**
 * Checks made at the door, before any route runs: the routes known per method (for
 * 405 + Allow), and input the stores cannot hold (NUL, lone surrogates) or nested
 * too deeply anywhere in a body, query string or path parameter, refused with a
 * 400 naming the field.
 */
export interface RequestGuards {
  /** The methods a path has routes for (empty when it has none). */
  allowedMethods(url: string): string[];
}

function patternOf(url: string): RegExp {
  const source = url
    .split("/")
    .map((segment) =>
      segment.startsWith(":")
        ? "[^/]+"
        : segment === "*"
          ? ".*"
          : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
    )
    .join("/");
  return new RegExp(`^${source}$`);
}

function decodes(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

/** Registers the guards; call before any route is added (routes are recorded as they come). */
export function registerRequestGuards(app: FastifyInstance): RequestGuards {
  const routes: { pattern: RegExp; methods: Set<string> }[] = [];
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const pattern = patternOf(route.url);
    const known = routes.find((entry) => entry.pattern.source === pattern.source);
    if (known) for (const method of methods) known.methods.add(method);
    else routes.push({ pattern, methods: new Set(methods) });
  });

  app.addHook("preValidation", async (request) => {
    if (request.is404) return;
    const query = request.url.indexOf("?");
    if (query >= 0 && !decodes(request.url.slice(query + 1))) {
      // the router refuses a malformed path; the query parser would keep the raw text
      throw new RuntimeError("validation", "malformed URL (bad percent-encoding in the query string)", {
        retryable: false,
      });
    }
    const sources = [
      ["the path", request.params],
      ["the query string", request.query],
      ["the request body", request.body],
    ] as const;
    for (const [where, value] of sources) {
      const issue = findUnstorable(value);
      if (issue) {
        const field = issue.path || "(root)";
        throw new RuntimeError("validation", `invalid value in ${where}: ${field}: ${issue.message}`, {
          retryable: false,
          details: [{ path: issue.path, message: issue.message }],
        });
      }
    }
  });

  return {
    allowedMethods: (url) => {
      const path = url.split("?")[0] ?? url;
      const methods = new Set<string>();
      for (const route of routes) if (route.pattern.test(path)) for (const m of route.methods) methods.add(m);
      return [...methods].sort();
    },
  };
}

/** The not-found answer: 405 with `Allow` when the path exists under other methods, else 404. */
export function answerUnrouted(guards: RequestGuards, request: FastifyRequest, reply: FastifyReply) {
  const path = request.url.split("?")[0] ?? request.url;
  const allowed = guards.allowedMethods(path);
  if (allowed.length > 0 && !allowed.includes(request.method)) {
    reply.header("allow", allowed.join(", "));
    return sendHttpError(reply, 405, {
      type: "invalid_request_error",
      code: "method_not_allowed",
      message: `${request.method} is not allowed on ${path.slice(0, 200)}; allowed: ${allowed.join(", ")}`,
    });
  }
  return sendHttpError(reply, 404, {
    type: "not_found_error",
    code: "not_found",
    message: `no route ${request.method} ${path.slice(0, 200)}`,
  });
}

/** Requests the router refuses before any route: a malformed URL (400), a path parameter too long (414). */
export function routerErrorHandler(logger: { error(object: object, message?: string): void }) {
  return (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
    if (error.code === "FST_ERR_BAD_URL") {
      return sendHttpError(reply, 400, {
        type: "invalid_request_error",
        code: "validation",
        message: "malformed URL (bad percent-encoding)",
      });
    }
    if (error.code === "FST_ERR_MAX_PARAM_LENGTH") {
      return sendHttpError(reply, 414, {
        type: "invalid_request_error",
        code: "uri_too_long",
        message: "a path segment is too long",
      });
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return sendHttpError(reply, status, {
        type: "invalid_request_error",
        code: "validation",
        message: "the request URL was refused",
      });
    }
    logger.error({ err: error }, "request refused by the router");
    return sendHttpError(reply, 500, { type: "server_error", code: "internal", message: "internal error" });
  };
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
};

/**
 * Node refuses some requests before Fastify sees them (headers too large, a request
 * line or header it cannot parse, a request too slow to arrive): they still get the
 * documented error body, then the connection is closed.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  let status = 400;
  let body: object;
  if (error.code === "HPE_HEADER_OVERFLOW") {
    status = 431;
    body = httpErrorBody({
      type: "invalid_request_error",
      code: "headers_too_large",
      message: "request headers (or the URL) are too large",
    });
  } else if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    status = 408;
    body = httpErrorBody({
      type: "invalid_request_error",
      code: "request_timeout",
      message: "the request did not arrive in time",
    });
  } else {
    body = httpErrorBody({
      type: "invalid_request_error",
      code: "bad_request",
      message: "malformed HTTP request",
    });
  }
  const text = JSON.stringify(body);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    () => socket.destroy(),
  );
}
