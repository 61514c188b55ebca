import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { sep } from "node:path";
import { type DiagLogger, DiagLogLevel, diag } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { diagLogLevelFromString, getBooleanFromEnv, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { IORedisInstrumentation } from "@opentelemetry/instrumentation-ioredis";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { AlwaysOffSampler, BatchSpanProcessor, NoopSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import { z } from "zod";
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
 * (undici) calls, Postgres queries (pg) and Redis commands (ioredis) made inside a
 * traced operation. Exports traces and metrics (every `createMetrics` registry)
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
  // with nothing to export, no query or command is wrapped in a span of its own
  const databases = exportTraces
    ? [
        // inside a traced operation only (not the pool's or a poller's own background queries)
        new PgInstrumentation({ requireParentSpan: true }),
        // the command's name only: its arguments are keys and values of users' data
        new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (command) => command }),
      ]
    : [];
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES (env detector) still win over this.
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.service }),
    contextManager: new AsyncLocalStorageContextManager(),
    textMapPropagator: new W3CTraceContextPropagator(),
    // fetch (the openai client's provider calls) through diagnostics_channel: no loader hook needed
    instrumentations: exportTraces ? [new UndiciInstrumentation(), ...databases] : [],
    // with nothing to export (and no OTEL_TRACES_SAMPLER), spans are not recorded: they still carry
    // trace and span ids (logs, traceparent to the next service), but nothing is kept per span
    ...(exportTraces || env.OTEL_TRACES_SAMPLER ? {} : { sampler: new AlwaysOffSampler() }),
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
  // the services import pg and ioredis before they start telemetry, and an ESM import is not seen
  // by the instrumentations' require hook: their loaded copies are patched here
  instrumentLoaded(databases);
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

/** The entry file of each traced client library, as it sits in the require cache. */
const ENTRY_FILES: Record<string, string> = {
  pg: ["pg", "lib", "index.js"].join(sep),
  "pg-pool": ["pg-pool", "index.js"].join(sep),
  ioredis: ["ioredis", "built", "index.js"].join(sep),
};
const PackageJson = z.object({ version: z.string() });

interface ModuleDefinition {
  name: string;
  moduleExports?: unknown;
  moduleVersion?: string;
  patch?: (moduleExports: unknown, moduleVersion?: string) => unknown;
}

/**
 * Applies the instrumentations to the copies of their libraries already loaded (every copy:
 * each package may hold its own). ESM imports of these CommonJS packages load them through
 * the require cache, so it lists them. Patching twice is harmless: each patch unwraps first.
 */
export function instrumentLoaded(
  instrumentations: ReadonlyArray<{ getModuleDefinitions(): ModuleDefinition[] }>,
): number {
  const cache = createRequire(import.meta.url).cache;
  let patched = 0;
  for (const instrumentation of instrumentations) {
    for (const definition of instrumentation.getModuleDefinitions()) {
      const entry = ENTRY_FILES[definition.name];
      if (!entry || !definition.patch) continue;
      const suffix = `${sep}node_modules${sep}${entry}`;
      for (const [file, module] of Object.entries(cache)) {
        if (!module?.loaded || !file.endsWith(suffix)) continue;
        const root = file.slice(0, file.length - entry.length + definition.name.length + 1);
        const version = PackageJson.parse(JSON.parse(readFileSync(`${root}package.json`, "utf8"))).version;
        definition.moduleExports = module.exports;
        definition.moduleVersion = version;
        definition.patch(module.exports, version);
        patched++;
      }
    }
  }
  return patched;
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
