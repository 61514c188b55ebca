import { startTelemetry, type Telemetry } from "@agent-runtime/telemetry";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attributesOf,
  type OtlpMetric,
  type OtlpReceiver,
  startOtlpReceiver,
} from "../support/otlp-receiver.js";
import { type Stack, startStack } from "../support/stack.js";

const API_KEY = "sk-e2e-otlp-metrics-key";

let receiver: OtlpReceiver;
let telemetry: Telemetry;
let fake: FakeOpenAI;
let stack: Stack;

// Each test file runs in its own worker: this process's OpenTelemetry SDK exports to the receiver.
beforeAll(async () => {
  receiver = await startOtlpReceiver();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  telemetry = await startTelemetry({ service: "otlp-metrics-e2e" });
  fake = await startFakeOpenAI();
  stack = await startStack({ openaiBaseUrl: fake.url, bootstrapApiKey: API_KEY });
});

afterAll(async () => {
  await telemetry?.shutdown();
  await stack?.stop();
  await fake?.close();
  await receiver?.close();
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
});

/** The value of one series in Prometheus text (`name{…labels…} value`), labels in any order. */
function scraped(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((pair) => [pair[1], pair[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

function pointsOf(metric: OtlpMetric) {
  return metric.sum?.dataPoints ?? metric.gauge?.dataPoints ?? metric.histogram?.dataPoints ?? [];
}

describe("metrics over OTLP", () => {
  it("exports the registry /metrics serves, with its names and labels", async () => {
    fake.setHandler(() => ({ content: "Metrics travel over OTLP too." }));
    const response = await fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "assistant", messages: [{ role: "user", content: "count me" }] }),
    });
    expect(response.status).toBe(200);
    // ingress's /metrics (Prometheus text) before the final export (shutdown collects once more)
    const ingressText = await (await fetch(`${stack.opsUrl}/metrics`)).text();
    await telemetry.shutdown();

    const exports = receiver.metricExports();
    expect(exports.length).toBeGreaterThan(0);
    const last = new Map<string, OtlpMetric[]>();
    for (const metric of exports.at(-1)!) last.set(metric.name, [...(last.get(metric.name) ?? []), metric]);

    // a counter: a monotonic sum whose points keep the Prometheus labels, service included
    const requests = (last.get("http_requests_total") ?? []).flatMap(pointsOf).map((point) => ({
      attributes: attributesOf(point),
      value: Number(point.asDouble ?? point.asInt),
    }));
    const chat = requests.find(
      (point) =>
        point.attributes.service === "ingress" &&
        point.attributes.route === "/v1/chat/completions" &&
        point.attributes.status === "200",
    );
    expect(chat, JSON.stringify(requests)).toBeDefined();
    expect(chat!.value).toBe(
      scraped(ingressText, "http_requests_total", { route: "/v1/chat/completions", status: "200" }),
    );
    expect(last.get("http_requests_total")![0]!.sum?.isMonotonic).toBe(true);

    // a histogram: explicit buckets, the same count as /metrics
    const latency = (last.get("http_request_seconds") ?? [])
      .flatMap((metric) => metric.histogram?.dataPoints ?? [])
      .find((point) => attributesOf(point).route === "/v1/chat/completions");
    expect(latency).toBeDefined();
    expect(latency!.explicitBounds?.[0]).toBe(0.001);
    expect(Number(latency!.count)).toBe(
      scraped(ingressText, "http_request_seconds_count", { route: "/v1/chat/completions" }),
    );
    expect(latency!.bucketCounts?.reduce((sum: number, count) => sum + Number(count), 0)).toBe(
      Number(latency!.count),
    );

    // every service's registry is exported, and per-tenant token and cost counters carry the tenant
    const services = new Set(
      [...last.values()]
        .flat()
        .flatMap((metric) => pointsOf(metric).map((point) => attributesOf(point).service)),
    );
    for (const service of ["ingress", "orchestrator", "model-proxy", "tool-executor", "memory"]) {
      expect(services).toContain(service);
    }
    const tenantTokens = (last.get("model_tenant_tokens_total") ?? []).flatMap(pointsOf).map(attributesOf);
    expect(tenantTokens).toContainEqual(
      expect.objectContaining({ service: "model-proxy", tenant: "default", kind: "prompt" }),
    );
    expect(last.get("model_tenant_cost_usd_total")?.flatMap(pointsOf).map(attributesOf)).toContainEqual(
      expect.objectContaining({ tenant: "default" }),
    );
  });
});
