import { Writable } from "node:stream";
import { context, propagation, SpanStatusCode, trace } from "@opentelemetry/api";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { createMetrics } from "./metrics.js";
import { registerOpsRoutes } from "./ops-server.js";
import { startTelemetry } from "./sdk.js";
import { installShutdown } from "./shutdown.js";
import { withSpan } from "./span.js";

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { logger: createLogger({ service: "test", level: "debug", destination }), lines };
}

beforeAll(async () => {
  await startTelemetry({ service: "telemetry-test" });
});

describe("logger and spans", () => {
  it("adds trace and span ids inside a span, none outside", async () => {
    const { logger, lines } = captureLogger();
    logger.info("outside");
    let traceId = "";
    await withSpan("work", (span) => {
      traceId = span.spanContext().traceId;
      logger.info({ apiKey: "sk-secret" }, "inside");
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines[0]).not.toHaveProperty("trace_id");
    expect(lines[1]).toMatchObject({
      service: "test",
      trace_id: traceId,
      msg: "inside",
      apiKey: "[redacted]",
    });
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceId).not.toBe("00000000000000000000000000000000");
  });

  it("records the error status and rethrows", async () => {
    let status: number | undefined;
    await expect(
      withSpan("failing", (span) => {
        const original = span.setStatus.bind(span);
        span.setStatus = (value) => {
          status = value.code;
          return original(value);
        };
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(status).toBe(SpanStatusCode.ERROR);
  });

  it("injects a W3C traceparent after start-up", async () => {
    const carrier: Record<string, string> = {};
    await withSpan("outgoing", () => {
      propagation.inject(context.active(), carrier);
    });
    expect(carrier.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});

describe("ops routes", () => {
  const app = Fastify();
  const metrics = createMetrics("ops-test");
  const state = { healthy: true, hang: false, draining: false };
  beforeAll(async () => {
    registerOpsRoutes(app, {
      metrics,
      checkTimeoutMs: 200,
      isDraining: () => state.draining,
      checks: {
        nats: async () => {
          if (!state.healthy) throw new Error("connection refused");
        },
        postgres: () => (state.hang ? new Promise<void>(() => undefined) : Promise.resolve()),
      },
    });
    await app.ready();
  });
  afterAll(() => app.close());

  it("is ready when every check passes and not when one fails, hangs or drains", async () => {
    expect((await app.inject("/healthz")).json()).toEqual({ status: "ok" });
    const ready = await app.inject("/readyz");
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: "ready", checks: { nats: "ok", postgres: "ok" } });

    state.healthy = false;
    const failing = await app.inject("/readyz");
    expect(failing.statusCode).toBe(503);
    expect(failing.headers["retry-after"]).toBe("5");
    expect(failing.json().checks.nats).toBe("connection refused");

    state.healthy = true;
    state.hang = true;
    const hanging = await app.inject("/readyz");
    expect(hanging.statusCode).toBe(503);
    expect(hanging.json().checks.postgres).toMatch(/no answer within 200 ms/);

    state.hang = false;
    state.draining = true;
    expect((await app.inject("/readyz")).statusCode).toBe(503);
    state.draining = false;
  });

  it("serves Prometheus text with our counters", async () => {
    metrics.counter("requests_total", "requests", ["route"]).inc({ route: "chat" }, 3);
    expect(metrics.counter("requests_total", "requests", ["route"])).toBe(
      metrics.counter("requests_total", "requests", ["route"]),
    );
    const response = await app.inject("/metrics");
    expect(response.headers["content-type"]).toMatch(/text\/plain/);
    expect(response.body).toContain('requests_total{route="chat",service="ops-test"} 3');
    expect(response.body).toContain("process_cpu_user_seconds_total");
  });
});

describe("shutdown", () => {
  it("runs the steps in order once", async () => {
    const { logger } = captureLogger();
    const order: string[] = [];
    const shutdown = installShutdown({
      logger,
      exit: false,
      signals: [],
      steps: [
        { name: "intake", run: async () => void order.push("intake") },
        { name: "drain", run: async () => void order.push("drain") },
      ],
    });
    expect(shutdown.isDraining()).toBe(false);
    await Promise.all([shutdown.trigger("test"), shutdown.trigger("again")]);
    expect(order).toEqual(["intake", "drain"]);
    expect(shutdown.isDraining()).toBe(true);
  });
});
