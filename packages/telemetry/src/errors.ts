/** Base class of every error this package throws. */
export class TelemetryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A log level that pino does not know (for example a typo in `LOG_LEVEL`). */
export class InvalidLogLevelError extends TelemetryError {
  readonly level: string;

  constructor(level: string, allowed: readonly string[]) {
    super(`unknown log level "${level}"; expected one of ${allowed.join(", ")}`);
    this.level = level;
  }
}

/** A log format other than `json` or `pretty` (for example a typo in `LOG_FORMAT`). */
export class InvalidLogFormatError extends TelemetryError {
  readonly format: string;

  constructor(format: string) {
    super(`unknown log format "${format}"; expected json or pretty`);
    this.format = format;
  }
}

/** A metric name asked for again with another kind (a counter name reused as a histogram). */
export class MetricKindConflictError extends TelemetryError {
  readonly metricName: string;

  constructor(metricName: string, existingKind: string, requestedKind: string) {
    super(`metric "${metricName}" is already a ${existingKind}; cannot make it a ${requestedKind}`);
    this.metricName = metricName;
  }
}
