import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { MetricKindConflictError } from "./errors.js";
import { exportRegistry } from "./metrics-bridge.js";

/** Latency buckets in seconds, 1 ms … 30 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

export interface Metrics {
  /** This service's own registry (never prom-client's global one). */
  readonly registry: Registry;
  /** The counter of that name, made on the first call. */
  counter<L extends string = string>(name: string, help: string, labelNames?: readonly L[]): Counter<L>;
  /** The histogram of that name, made on the first call; buckets default to `LATENCY_BUCKETS`. */
  histogram<L extends string = string>(
    name: string,
    help: string,
    labelNames?: readonly L[],
    buckets?: readonly number[],
  ): Histogram<L>;
  /**
   * The gauge of that name, made on the first call; `collect`, when given, sets its values each
   * time it is read (a scrape, an OTLP export) instead of the code that changes them.
   */
  gauge<L extends string = string>(
    name: string,
    help: string,
    labelNames?: readonly L[],
    collect?: (gauge: Gauge<L>) => void,
  ): Gauge<L>;
}

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop lag, GC); on by default. */
  defaultMetrics?: boolean;
}

type AnyMetric = Counter<string> | Histogram<string> | Gauge<string>;
type MetricClass = typeof Counter | typeof Histogram | typeof Gauge;

const MISNAMED_DEFAULT_METRICS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
] as const;

/**
 * Prometheus metrics of one service, in their own registry so several services
 * can share a process (tests), every series labelled with `service`. The same
 * registry is exported over OTLP when `startTelemetry` exports metrics.
 */
export function createMetrics(service: string, options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  exportRegistry(registry);
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    // gauges named like counters (`promtool check metrics` flags them); the same counts stay,
    // by type, in nodejs_active_handles, nodejs_active_requests and nodejs_active_resources
    for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }
  const made = new Map<string, AnyMetric>();

  function once<M extends AnyMetric>(name: string, kind: MetricClass, make: () => M): M {
    const existing = made.get(name);
    if (existing) {
      if (!(existing instanceof kind)) {
        throw new MetricKindConflictError(
          name,
          existing.constructor.name.toLowerCase(),
          kind.name.toLowerCase(),
        );
      }
      return existing as M;
    }
    const metric = make();
    made.set(name, metric);
    return metric;
  }

  return {
    registry,
    counter: <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
      once(name, Counter, () => new Counter<L>({ name, help, labelNames, registers: [registry] })),
    histogram: <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[] = [],
      buckets: readonly number[] = LATENCY_BUCKETS,
    ) =>
      once(
        name,
        Histogram,
        () => new Histogram<L>({ name, help, labelNames, buckets: [...buckets], registers: [registry] }),
      ),
    gauge: <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[] = [],
      collect?: (gauge: Gauge<L>) => void,
    ) =>
      once(
        name,
        Gauge,
        () =>
          new Gauge<L>({
            name,
            help,
            labelNames,
            registers: [registry],
            ...(collect
              ? {
                  collect(this: Gauge<L>) {
                    collect(this);
                  },
                }
              : {}),
          }),
      ),
  };
}
