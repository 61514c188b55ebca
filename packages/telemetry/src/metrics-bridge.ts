import { type Attributes, type HrTime, ValueType } from "@opentelemetry/api";
import { hrTime } from "@opentelemetry/core";
import { emptyResource } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type MetricData,
  type MetricProducer,
  type ScopeMetrics,
} from "@opentelemetry/sdk-metrics";
import type { MetricObjectWithValues, MetricValue, Registry } from "prom-client";

/**
 * The registries of this process's services (several share a process in tests), held weakly: a
 * stopped service's registry goes when it is collected.
 */
const registries = new Set<WeakRef<Registry>>();
const startTimes = new WeakMap<Registry, HrTime>();

/** Makes a registry's metrics part of what the OTLP metric exporter sends (see `startTelemetry`). */
export function exportRegistry(registry: Registry): void {
  startTimes.set(registry, hrTime());
  registries.add(new WeakRef(registry));
}

/**
 * The metrics registries as an OpenTelemetry MetricProducer: one registry, read by both the
 * Prometheus `/metrics` route and the OTLP exporter, so the two always agree. Counters become
 * monotonic cumulative sums, gauges gauges, histograms explicit-bucket histograms; names and
 * labels (the `service` label included) are kept as they are.
 */
export function registryMetricProducer(): MetricProducer {
  return {
    async collect(): Promise<CollectionResult> {
      const scopeMetrics: ScopeMetrics[] = [];
      const errors: unknown[] = [];
      for (const reference of registries) {
        const registry = reference.deref();
        if (!registry) {
          registries.delete(reference);
          continue;
        }
        try {
          const metrics = await registry.getMetricsAsJSON();
          const startTime = startTimes.get(registry) ?? hrTime();
          scopeMetrics.push({
            scope: { name: "@agent-runtime/metrics" },
            metrics: metrics.flatMap((metric) => toMetricData(metric, startTime, hrTime())),
          });
        } catch (error) {
          errors.push(error);
        }
      }
      return { resourceMetrics: { resource: emptyResource(), scopeMetrics }, errors };
    },
  };
}

function toMetricData(
  metric: MetricObjectWithValues<MetricValue<string>>,
  startTime: HrTime,
  endTime: HrTime,
): MetricData[] {
  const descriptor = { name: metric.name, description: metric.help, unit: "", valueType: ValueType.DOUBLE };
  const points = (values: MetricValue<string>[]) =>
    values.map((sample) => ({ startTime, endTime, attributes: labelsOf(sample), value: sample.value }));
  switch (String(metric.type)) {
    case "counter":
      return [
        {
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.SUM,
          isMonotonic: true,
          dataPoints: points(metric.values),
        },
      ];
    case "gauge":
      return [
        {
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.GAUGE,
          dataPoints: points(metric.values),
        },
      ];
    case "histogram":
      return [
        {
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.HISTOGRAM,
          dataPoints: histogramPoints(metric.name, metric.values, startTime, endTime),
        },
      ];
    default:
      // summaries: none of ours; Prometheus still serves them
      return [];
  }
}

interface Series {
  attributes: Attributes;
  /** Cumulative counts by `le`, as Prometheus keeps them. */
  buckets: Array<[number, number]>;
  sum: number;
  count: number;
}

/** Prometheus `_bucket`/`_sum`/`_count` samples regrouped into one OTLP point per label set. */
function histogramPoints(name: string, values: MetricValue<string>[], startTime: HrTime, endTime: HrTime) {
  const series = new Map<string, Series>();
  for (const sample of values) {
    const { le, ...labels } = (sample.labels ?? {}) as Record<string, string | number>;
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
    let entry = series.get(key);
    if (!entry) {
      entry = { attributes: labels, buckets: [], sum: 0, count: 0 };
      series.set(key, entry);
    }
    const sampleName = (sample as { metricName?: string }).metricName ?? name;
    if (sampleName.endsWith("_bucket") && le !== undefined) {
      if (le !== "+Inf") entry.buckets.push([Number(le), sample.value]);
    } else if (sampleName === `${name}_sum`) entry.sum = sample.value;
    else if (sampleName === `${name}_count`) entry.count = sample.value;
  }
  return [...series.values()].map((entry) => {
    entry.buckets.sort(([a], [b]) => a - b);
    const counts: number[] = [];
    let previous = 0;
    for (const [, cumulative] of entry.buckets) {
      counts.push(cumulative - previous);
      previous = cumulative;
    }
    counts.push(entry.count - previous);
    return {
      startTime,
      endTime,
      attributes: entry.attributes,
      value: {
        buckets: { boundaries: entry.buckets.map(([le]) => le), counts },
        sum: entry.sum,
        count: entry.count,
      },
    };
  });
}

function labelsOf(sample: MetricValue<string>): Attributes {
  return { ...(sample.labels as Attributes) };
}
