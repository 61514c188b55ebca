import { trace } from "@opentelemetry/api";
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where lines go (stdout by default); tests pass a stream to capture them. */
  destination?: DestinationStream;
}

const REDACT = [
  "authorization",
  "apiKey",
  "api_key",
  "password",
  "*.authorization",
  "*.apiKey",
  "*.api_key",
  "*.password",
  "headers.authorization",
  "*.headers.authorization",
];

/** pino JSON logs; every line inside a span carries `trace_id` and `span_id`. */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? "info";
  return pino(
    {
      level,
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const spanContext = trace.getActiveSpan()?.spanContext();
        if (!spanContext || spanContext.traceId === "00000000000000000000000000000000") return {};
        return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
      },
    },
    options.destination,
  );
}
