import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Latency buckets in seconds, 1 ms … 30 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface Metrics {
  readonly registry: Registry;
  counter<L extends string = string>(name: string, help: string, labelNames?: readonly L[]): Counter<L>;
  histogram<L extends string = string>(
    name: string,
    help: string,
    labelNames?: readonly L[],
    buckets?: number[],
  ): Histogram<L>;
  gauge<L extends string = string>(name: string, help: string, labelNames?: readonly L[]): Gauge<L>;
}

/** A Prometheus registry of one service (not the global one), with process metrics. */
export function createMetrics(service: string, options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const made = new Map<string, Counter<string> | Histogram<string> | Gauge<string>>();

  function once<T extends Counter<string> | Histogram<string> | Gauge<string>>(
    name: string,
    make: () => T,
  ): T {
    const existing = made.get(name);
    if (existing) return existing as T;
    const metric = make();
    made.set(name, metric);
    return metric;
  }

  return {
    registry,
    counter: (name, help, labelNames = []) =>
      once(
        name,
        () => new Counter({ name, help, labelNames: [...labelNames], registers: [registry] }),
      ) as never,
    histogram: (name, help, labelNames = [], buckets = LATENCY_BUCKETS) =>
      once(
        name,
        () => new Histogram({ name, help, labelNames: [...labelNames], buckets, registers: [registry] }),
      ) as never,
    gauge: (name, help, labelNames = []) =>
      once(
        name,
        () => new Gauge({ name, help, labelNames: [...labelNames], registers: [registry] }),
      ) as never,
  };
}
