import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { metrics } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTelemetry } from "./sdk.js";
import { withSpan } from "./span.js";

interface Received {
  path: string;
  contentType: string | undefined;
  body: string;
}

// A real HTTP collector stand-in; each test file runs in a fresh worker, so this SDK start is our own.
const received: Received[] = [];
let collector: Server;
const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;

beforeAll(async () => {
  collector = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({
        path: request.url ?? "",
        contentType: request.headers["content-type"],
        body: Buffer.concat(chunks).toString(),
      });
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
  await new Promise((resolve) => collector.close(resolve));
});

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
