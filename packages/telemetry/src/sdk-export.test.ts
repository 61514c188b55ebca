import { metrics } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTelemetry } from "./sdk.js";
import { withSpan } from "./span.js";
import { type CollectedRequest, startCollector } from "./test-support.js";

// A real HTTP collector stand-in; each test file runs in a fresh worker, so this SDK start is our own.
const received: CollectedRequest[] = [];
let collector: Awaited<ReturnType<typeof startCollector>>;

beforeAll(async () => {
  collector = await startCollector((request) => received.push(request));
});

afterAll(() => collector.close());

describe("startTelemetry with OTEL_EXPORTER_OTLP_ENDPOINT", () => {
  it("exports spans and metrics over OTLP/HTTP and flushes them on shutdown", async () => {
    const telemetry = await startTelemetry({ service: "export-test" });
    metrics.getMeter("export-test").createCounter("otel_test_total").add(1);
    let traceId = "";
    await withSpan("exported-span", (span) => {
      traceId = span.spanContext().traceId;
    });
    await telemetry.shutdown();

    const traces = received.filter((request) => request.path === "/v1/traces");
    expect(traces.length).toBeGreaterThan(0);
    const body = traces.map((request) => request.body).join("\n");
    expect(body).toContain("exported-span");
    expect(body).toContain("export-test");
    expect(body).toContain(traceId);
    const exportedMetrics = received.filter((request) => request.path === "/v1/metrics");
    expect(exportedMetrics.map((request) => request.body).join("\n")).toContain("otel_test_total");
  });
});
