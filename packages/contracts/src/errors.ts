import { z } from "zod";

/** Every failure kind that crosses a process boundary. */
export const ErrorCode = z.enum([
  "validation",
  "unauthorized",
  "forbidden",
  "not_found",
  "conflict",
  "payload_too_large",
  "rate_limited",
  "overloaded",
  "timeout",
  /** The request's own deadline passed before it was answered (never retried: no time is left). */
  "deadline_exceeded",
  "cancelled",
  "budget_exceeded",
  "guardrail_blocked",
  "upstream",
  "unavailable",
  "internal",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** An error as data, on NATS. */
export const WireError = z.object({
  code: ErrorCode,
  message: z.string(),
  retryable: z.boolean(),
  retryAfterMs: z.number().int().nonnegative().optional(),
  details: z.unknown().optional(),
});
export type WireError = z.infer<typeof WireError>;

/** The HTTP error body: `{ error: { type, message, details? } }`. */
export const HttpErrorBody = z.object({
  error: z.object({
    type: z.string(),
    message: z.string(),
    code: z.string().nullish(),
    param: z.string().nullish(),
    details: z.unknown().optional(),
  }),
});
export type HttpErrorBody = z.infer<typeof HttpErrorBody>;

const retryableCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "rate_limited",
  "overloaded",
  "timeout",
  "upstream",
  "unavailable",
]);

export function isRetryableCode(code: ErrorCode): boolean {
  return retryableCodes.has(code);
}

export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case "validation":
      return 400;
    case "unauthorized":
      return 401;
    case "forbidden":
    case "guardrail_blocked":
      return 403;
    case "not_found":
      return 404;
    case "conflict":
      return 409;
    case "payload_too_large":
      return 413;
    case "rate_limited":
      return 429;
    case "budget_exceeded":
      return 402;
    case "overloaded":
    case "unavailable":
      return 503;
    case "timeout":
    case "deadline_exceeded":
      return 504;
    case "cancelled":
      return 499;
    case "upstream":
      return 502;
    case "internal":
      return 500;
  }
}

/** Base class of every error we throw ourselves; carries its wire form. */
export class RuntimeError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly details: unknown;

  constructor(
    code: ErrorCode,
    message: string,
    options: { retryable?: boolean; retryAfterMs?: number; details?: unknown; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? isRetryableCode(code);
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }

  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.retryAfterMs !== undefined) wire.retryAfterMs = this.retryAfterMs;
    if (this.details !== undefined) wire.details = this.details;
    return wire;
  }

  static fromWire(wire: WireError): RuntimeError {
    return new RuntimeError(wire.code, wire.message, {
      retryable: wire.retryable,
      ...(wire.retryAfterMs === undefined ? {} : { retryAfterMs: wire.retryAfterMs }),
      details: wire.details,
    });
  }
}

/** Turns anything thrown into a wire error without leaking stacks. */
export function toWireError(error: unknown): WireError {
  if (error instanceof RuntimeError) return error.toWire();
  if (error instanceof z.ZodError) {
    return {
      code: "validation",
      message: formatZodError(error),
      retryable: false,
      details: zodIssues(error),
    };
  }
  if (isConnectionFailure(error)) {
    return {
      code: "unavailable",
      message: "a backing service connection failed; retry shortly",
      retryable: true,
    };
  }
  return { code: "internal", message: "internal error", retryable: false };
}

/** Errors of the NATS client and of sockets that say a connection failed, not that the request was wrong. */
const CONNECTION_ERROR_NAMES = new Set([
  "ConnectionError",
  "ClosedConnectionError",
  "RequestError",
  "NoResponders",
  "DrainingConnectionError",
]);
const CONNECTION_ERROR_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTCONN",
]);

/** What the pg client says, without a code, when its connection is lost or cannot be made. */
const LOST_CONNECTION = /connection terminated|timeout exceeded when trying to connect|connection error/i;

function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return (
    CONNECTION_ERROR_NAMES.has(error.name) ||
    (typeof code === "string" && CONNECTION_ERROR_CODES.has(code)) ||
    (code === undefined && LOST_CONNECTION.test(error.message))
  );
}

export interface FieldIssue {
  path: string;
  message: string;
}

export function zodIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}

export function formatZodError(error: z.ZodError, prefix = ""): string {
  const parts = error.issues.slice(0, 5).map((issue) => {
    const path = formatPath(issue.path);
    return path ? `${prefix}${path}: ${issue.message}` : `${prefix}${issue.message}`;
  });
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : "";
  return parts.join("; ") + more;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}
