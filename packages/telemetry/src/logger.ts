import { hostname } from "node:os";
import { isSpanContextValid, trace } from "@opentelemetry/api";
import { type DestinationStream, type Logger, pino } from "pino";
import pretty from "pino-pretty";
import { InvalidLogFormatError } from "./errors.js";
import { parseLogLevel } from "./log-level.js";

export type { Logger };

/** JSON lines (for collectors), or human lines (for a person at a terminal). */
export type LogFormat = "json" | "pretty";

/**
 * The log format: `LOG_FORMAT` (`json` or `pretty`) when set; otherwise pretty when the output is
 * a terminal and JSON when it is a file, a pipe or a log collector. Throws
 * `InvalidLogFormatError` for any other value.
 */
export function parseLogFormat(value: string | undefined, toTerminal: boolean): LogFormat {
  const format = value?.trim().toLowerCase();
  if (!format) return toTerminal ? "pretty" : "json";
  if (format !== "json" && format !== "pretty") throw new InvalidLogFormatError(format);
  return format;
}

export interface LoggerOptions {
  service: string;
  /** Wins over `LOG_LEVEL`; both unset gives `info`. */
  level?: string;
  /** Wins over `LOG_FORMAT`; both unset gives pretty lines on a terminal, JSON otherwise. */
  format?: LogFormat;
  /** Where lines go (stdout by default); tests pass a stream to capture them. */
  destination?: DestinationStream;
}

/** Keys (any case) whose values are never written to logs: in the logged object, one level down, and two levels down. */
export const SECRET_LOG_KEYS: ReadonlySet<string> = new Set([
  "authorization",
  "apikey",
  "api_key",
  "password",
  "cookie",
  "set-cookie",
  "x-api-key",
]);

const CENSOR = "[redacted]";
const REDACT_DEPTH = 2;

const isSecretKey = (key: string) => SECRET_LOG_KEYS.has(key.toLowerCase());

/** A shallow copy of `value` with the same prototype and own properties (an Error keeps its message and stack). */
function copyOf(value: object): Record<string, unknown> {
  return Object.defineProperties(
    Object.create(Object.getPrototypeOf(value)),
    Object.getOwnPropertyDescriptors(value),
  ) as Record<string, unknown>;
}

/**
 * `value` with every secret (see `SECRET_LOG_KEYS`) replaced by `[redacted]` down to `depth` levels;
 * the same object when it holds none, so a flat log line costs one look at each key. Never
 * changes the caller's objects.
 */
export function redactSecrets<T>(value: T, depth = REDACT_DEPTH): T {
  if (
    typeof value !== "object" ||
    value === null ||
    Array.isArray(value) ||
    value instanceof Date ||
    ArrayBuffer.isView(value) // a Buffer's keys are its bytes
  )
    return value;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key];
    let replaced: unknown = field;
    if (isSecretKey(key)) replaced = CENSOR;
    else if (depth > 0 && typeof field === "object" && field !== null)
      replaced = redactSecrets(field, depth - 1);
    if (replaced !== field) {
      copy ??= copyOf(value);
      copy[key] = replaced;
    }
  }
  return (copy ?? value) as T;
}

/** Trace and span ids of the active span, if there is a real one. */
function traceFields(): { trace_id?: string; span_id?: string } {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (!spanContext || !isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/**
 * pino logs, JSON or pretty (see `parseLogFormat`); every line written inside a span carries
 * `trace_id` and `span_id`.
 */
export function createLogger(options: LoggerOptions): Logger {
  const format =
    options.format ??
    parseLogFormat(process.env.LOG_FORMAT, !options.destination && Boolean(process.stdout.isTTY));
  const destination =
    format === "pretty"
      ? pretty({
          sync: true,
          translateTime: "SYS:HH:MM:ss.l",
          ignore: "pid,hostname",
          ...(options.destination ? { destination: options.destination } : {}),
        })
      : options.destination;
  return pino(
    {
      level: parseLogLevel(options.level ?? process.env.LOG_LEVEL),
      base: { service: options.service, pid: process.pid, hostname: hostname() },
      timestamp: pino.stdTimeFunctions.isoTime,
      // one pass over each logged object's keys: pino's path redaction with wildcards made every
      // line four times as expensive to write (42 µs against 10 µs)
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => redactSecrets(object),
      },
      mixin: traceFields,
    },
    destination,
  );
}
