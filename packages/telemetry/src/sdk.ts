import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { Logger } from "./logger.js";

export interface Telemetry {
  shutdown(): Promise<void>;
}

let current: Promise<Telemetry> | undefined;

/**
 * Registers a tracer provider, an AsyncLocalStorage context manager and the
 * W3C propagator; exports over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 * Idempotent per process.
 */
export function startTelemetry(options: { service: string; logger?: Logger }): Promise<Telemetry> {
  current ??= start(options);
  return current;
}

async function start(options: { service: string; logger?: Logger }): Promise<Telemetry> {
  if (process.env.OTEL_SDK_DISABLED === "true") return { shutdown: async () => undefined };
  const resource = resourceFromAttributes({
    "service.name": process.env.OTEL_SERVICE_NAME ?? options.service,
  });
  if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    const sdk = new NodeSDK({
      resource,
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
      metricReader: new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() }),
      contextManager: new AsyncLocalStorageContextManager(),
      textMapPropagator: new W3CTraceContextPropagator(),
      instrumentations: [],
    });
    sdk.start();
    options.logger?.info(
      { endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT },
      "OpenTelemetry export enabled",
    );
    return { shutdown: () => sdk.shutdown() };
  }
  // No exporter: still give spans real ids so trace context flows through logs and NATS headers.
  const provider = new BasicTracerProvider({ resource });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return { shutdown: () => provider.shutdown() };
}
