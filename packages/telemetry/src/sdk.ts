import { type DiagLogger, DiagLogLevel, diag } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { diagLogLevelFromString, getBooleanFromEnv, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, NoopSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { Logger } from "./logger.js";
import { registryMetricProducer } from "./metrics-bridge.js";

export interface Telemetry {
  /** Flushes pending spans and metrics and stops exporting. Safe to call twice. */
  shutdown(): Promise<void>;
}

export interface TelemetryOptions {
  service: string;
  logger?: Logger;
}

let current: Promise<Telemetry> | undefined;

/**
 * Starts OpenTelemetry once per process (a second call returns the first
 * instance). Always registers a tracer provider (so spans get real ids and
 * trace context reaches logs and NATS headers), an AsyncLocalStorage context
 * manager and the W3C trace-context propagator, and traces outgoing fetch
 * (undici) calls. Exports traces and metrics (every `createMetrics` registry)
 * over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the per-signal
 * variant) is set. `OTEL_SDK_DISABLED=true` turns all of it off.
 */
export function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  current ??= start(options);
  return current;
}

async function start(options: TelemetryOptions): Promise<Telemetry> {
  const { logger } = options;
  if (getBooleanFromEnv("OTEL_SDK_DISABLED")) {
    logger?.info("OpenTelemetry disabled by OTEL_SDK_DISABLED");
    return { shutdown: async () => undefined };
  }
  const env = process.env;
  const exportTraces = Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const exportMetrics = Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT);
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES (env detector) still win over this.
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.service }),
    contextManager: new AsyncLocalStorageContextManager(),
    textMapPropagator: new W3CTraceContextPropagator(),
    // fetch (the openai client's provider calls) through diagnostics_channel: no loader hook needed
    instrumentations: [new UndiciInstrumentation()],
    // NodeSDK registers a tracer provider only when it has a span processor:
    // with nothing to export, a no-op one still gives spans real ids.
    spanProcessors: [
      exportTraces ? new BatchSpanProcessor(new OTLPTraceExporter()) : new NoopSpanProcessor(),
    ],
    // Explicit lists, so NodeSDK never falls back to its env defaults (OTLP to localhost).
    // the services' Prometheus registries (createMetrics) are exported beside any OTel instruments
    metricReaders: exportMetrics
      ? [
          new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter(),
            metricProducers: [registryMetricProducer()],
            exportIntervalMillis: exportIntervalMs(),
          }),
        ]
      : [],
    logRecordProcessors: [],
  });
  // After the constructor, which installs a console logger when OTEL_LOG_LEVEL is set.
  if (logger) diag.setLogger(diagToPino(logger), diagLevel());
  sdk.start();
  logger?.info(
    exportTraces || exportMetrics
      ? { traces: exportTraces, metrics: exportMetrics, endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT }
      : { traces: false, metrics: false },
    "OpenTelemetry started",
  );

  let stopped: Promise<void> | undefined;
  return {
    shutdown: () => {
      stopped ??= sdk.shutdown().catch((error: unknown) => {
        logger?.warn({ err: error }, "OpenTelemetry shutdown failed");
      });
      return stopped;
    },
  };
}

/** `OTEL_METRIC_EXPORT_INTERVAL` (ms) if set, otherwise 60 s. */
function exportIntervalMs(): number {
  const interval = Number(process.env.OTEL_METRIC_EXPORT_INTERVAL);
  return Number.isFinite(interval) && interval > 0 ? interval : 60_000;
}

/** `OTEL_LOG_LEVEL` if set, otherwise warnings and errors only. */
function diagLevel(): DiagLogLevel {
  return diagLogLevelFromString(process.env.OTEL_LOG_LEVEL) ?? DiagLogLevel.WARN;
}

/** Routes OpenTelemetry's own diagnostics (export failures, …) into our JSON logs. */
function diagToPino(logger: Logger): DiagLogger {
  const child = logger.child({ component: "opentelemetry" });
  const write =
    (level: "error" | "warn" | "info" | "debug" | "trace") =>
    (message: string, ...args: unknown[]) =>
      args.length > 0 ? child[level]({ args }, message) : child[level](message);
  return {
    error: write("error"),
    warn: write("warn"),
    info: write("info"),
    debug: write("debug"),
    verbose: write("trace"),
  };
}
