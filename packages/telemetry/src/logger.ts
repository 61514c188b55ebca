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

/** Secrets never written to logs, at the top level and one level down. */
export const REDACTED_PATHS: readonly string[] = [
  "authorization",
  "apiKey",
  "api_key",
  "password",
  "*.authorization",
  "*.apiKey",
  "*.api_key",
  "*.password",
  "headers.authorization",
  "headers.cookie",
  'headers["x-api-key"]',
  "*.headers.authorization",
  "*.headers.cookie",
  '*.headers["x-api-key"]',
];

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
      redact: { paths: [...REDACTED_PATHS], censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
      mixin: traceFields,
    },
    destination,
  );
}
