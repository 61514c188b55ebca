export type { Attributes, Context, Span } from "@opentelemetry/api";
export { boundedLabel, DEFAULT_LABEL_LIMIT, OTHER_LABEL } from "./bounded-label.js";
export {
  InvalidLogFormatError,
  InvalidLogLevelError,
  MetricKindConflictError,
  TelemetryError,
} from "./errors.js";
export { endHttpClientSpan, startHttpClientSpan } from "./http-client-span.js";
export { annotateRequestSpan, registerHttpTracing } from "./http-tracing.js";
export type { LogLevel } from "./log-level.js";
export { parseLogLevel } from "./log-level.js";
export type { LogFormat, Logger, LoggerOptions } from "./logger.js";
export { createLogger, parseLogFormat, redactSecrets, SECRET_LOG_KEYS } from "./logger.js";
export type { Metrics, MetricsOptions } from "./metrics.js";
export { createMetrics, LATENCY_BUCKETS } from "./metrics.js";
export type { OpsRoutesOptions, ReadinessChecks, ReadinessReport } from "./ops-routes.js";
export { checkReadiness, registerOpsRoutes } from "./ops-routes.js";
export type { OpsServer, OpsServerOptions } from "./ops-server.js";
export { startOpsServer } from "./ops-server.js";
export type { Telemetry, TelemetryOptions } from "./sdk.js";
export { startTelemetry } from "./sdk.js";
export type { Shutdown, ShutdownOptions, ShutdownStep } from "./shutdown.js";
export { installShutdown } from "./shutdown.js";
export type { SpanOptions } from "./span.js";
export { DEFAULT_TRACER_NAME, errorType, getTracer, SpanKind, withSpan } from "./span.js";
export type { SpanAttributeValues } from "./span-attributes.js";
export { annotateSpan, metaAttributes, SpanAttribute } from "./span-attributes.js";
export type { StartupConnections, WaitOptions } from "./startup.js";
export {
  announceReady,
  ServerUnreachable,
  START_SERVERS_COMMAND,
  StartupWaitEnv,
  startOrExit,
  startupFailure,
  waitForServers,
} from "./startup.js";
