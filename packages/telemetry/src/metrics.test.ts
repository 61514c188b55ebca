import { describe, expect, it } from "vitest";
import { MetricKindConflictError } from "./errors.js";
import { createMetrics, LATENCY_BUCKETS } from "./metrics.js";

describe("createMetrics", () => {
  it("returns the same metric for the same name", () => {
    const metrics = createMetrics("metrics-test", { defaultMetrics: false });
    expect(metrics.counter("jobs_total", "jobs", ["kind"])).toBe(
      metrics.counter("jobs_total", "jobs", ["kind"]),
    );
    expect(metrics.histogram("job_seconds", "job time")).toBe(metrics.histogram("job_seconds", "job time"));
    expect(metrics.gauge("queue_depth", "depth")).toBe(metrics.gauge("queue_depth", "depth"));
  });

  it("refuses to reuse a name for another kind", () => {
    const metrics = createMetrics("metrics-test", { defaultMetrics: false });
    metrics.counter("things", "things");
    expect(() => metrics.histogram("things", "things")).toThrow(MetricKindConflictError);
  });

  it("keeps registries apart and labels every series with the service", async () => {
    const first = createMetrics("first");
    const second = createMetrics("second");
    first.counter("shared_total", "same name in two services").inc(2);
    second.counter("shared_total", "same name in two services").inc(5);
    const text = await first.registry.metrics();
    expect(text).toContain('shared_total{service="first"} 2');
    expect(text).not.toContain('service="second"');
    expect(text).toContain("process_cpu_user_seconds_total");
    expect(await second.registry.metrics()).toContain('shared_total{service="second"} 5');
  });

  it("uses latency buckets from 1 ms to 30 s by default", async () => {
    const metrics = createMetrics("metrics-test", { defaultMetrics: false });
    const histogram = metrics.histogram("call_seconds", "calls", ["route"]);
    histogram.observe({ route: "chat" }, 0.2);
    expect(LATENCY_BUCKETS[0]).toBe(0.001);
    expect(LATENCY_BUCKETS.at(-1)).toBe(30);
    const buckets = (await histogram.get()).values
      .filter((sample) => sample.metricName === "call_seconds_bucket")
      .map((sample) => [(sample.labels as Record<string, unknown>).le, sample.value]);
    expect(buckets).toEqual([...LATENCY_BUCKETS.map((le) => [le, le >= 0.2 ? 1 : 0]), ["+Inf", 1]]);
    expect(await metrics.registry.metrics()).toMatch(/call_seconds_count\{.*service="metrics-test".*\} 1/);
  });
});
