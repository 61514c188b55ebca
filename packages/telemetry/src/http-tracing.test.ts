import { type Span, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import Fastify from "fastify";
import { beforeAll, describe, expect, it } from "vitest";
import { annotateRequestSpan, registerHttpTracing } from "./http-tracing.js";
import { startTelemetry } from "./sdk.js";
import { withSpan } from "./span.js";

beforeAll(async () => {
  // nothing is exported here: spans are recorded only because the sampler says so
  process.env.OTEL_TRACES_SAMPLER = "always_on";
  await startTelemetry({ service: "http-tracing-test" });
});

async function tracedApp() {
  const app = Fastify({ logger: false });
  registerHttpTracing(app);
  // the handler reports the span it runs in, after its body was read
  app.post("/v1/things/:id", async (request) => {
    const span = trace.getActiveSpan();
    return { body: request.body, ...span?.spanContext(), recording: span?.isRecording() };
  });
  await app.ready();
  return app;
}

describe("registerHttpTracing", () => {
  it("makes a SERVER span that continues the client's traceparent and is active in the handler", async () => {
    const app = await tracedApp();
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const response = await app.inject({
      method: "POST",
      url: "/v1/things/7?x=1",
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      payload: { hello: "world" },
    });
    const seen = response.json() as { body: unknown; traceId: string; spanId: string; recording: boolean };
    expect(seen.body).toEqual({ hello: "world" });
    expect(seen.traceId).toBe(traceId);
    expect(seen.spanId).not.toBe("00f067aa0ba902b7");
    expect(seen.recording).toBe(true);
    await app.close();
  });

  it("starts a new trace without a traceparent", async () => {
    const app = await tracedApp();
    const first = (await app.inject({ method: "POST", url: "/v1/things/1", payload: {} })).json();
    const second = (await app.inject({ method: "POST", url: "/v1/things/2", payload: {} })).json();
    expect(first.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(first.traceId).not.toBe(second.traceId);
    await app.close();
  });

  it("carries attributes learnt while answering (the tenant of the key) on the request's span", async () => {
    const app = Fastify({ logger: false });
    registerHttpTracing(app);
    let requestSpan: Span | undefined;
    app.get("/v1/mine", async (request) => {
      requestSpan = trace.getActiveSpan();
      // as an authentication step deeper down does, under a span of its own
      await withSpan("authenticate", () => annotateRequestSpan(request, { "agent_runtime.tenant": "acme" }));
      return {};
    });
    await app.ready();
    expect((await app.inject({ method: "GET", url: "/v1/mine" })).statusCode).toBe(200);
    const span = requestSpan as unknown as ReadableSpan;
    expect(span.ended).toBe(true);
    expect(span.attributes).toMatchObject({
      "agent_runtime.tenant": "acme",
      "http.response.status_code": 200,
    });
    await app.close();
  });
});
