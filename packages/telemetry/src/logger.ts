import { hostname } from "node:os";
import { isSpanContextValid, trace } from "@opentelemetry/api";
import { type DestinationStream, type Logger, pino } from "pino";
import { parseLogLevel } from "./log-level.js";

export type { Logger };

export interface LoggerOptions {
  service: string;
  /** Wins over `LOG_LEVEL`; both unset gives `info`. */
  level?: string;
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

/** pino JSON logs; every line written inside a span carries `trace_id` and `span_id`. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: parseLogLevel(options.level ?? process.env.LOG_LEVEL),
      base: { service: options.service, pid: process.pid, hostname: hostname() },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACTED_PATHS], censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
      mixin: traceFields,
    },
    options.destination,
  );
}
