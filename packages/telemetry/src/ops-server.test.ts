import { Writable } from "node:stream";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { createMetrics } from "./metrics.js";
import { registerOpsRoutes } from "./ops-routes.js";
import { type OpsServer, startOpsServer } from "./ops-server.js";

const silentLogger = () =>
  createLogger({
    service: "ops-test",
    level: "silent",
    destination: new Writable({ write: (_c, _e, cb) => cb() }),
  });

describe("ops routes (in process)", () => {
  const app = Fastify({ logger: false });
  const metrics = createMetrics("ops-test");
  const state = { natsDown: false, postgresHangs: false, draining: false };

  beforeAll(async () => {
    registerOpsRoutes(app, {
      metrics,
      checkTimeoutMs: 100,
      isDraining: () => state.draining,
      checks: {
        nats: async () => {
          if (state.natsDown) {
            const error = new Error("connection refused");
            error.stack = "Error: connection refused\n    at secret/path.ts:1:1";
            throw error;
          }
        },
        postgres: () => (state.postgresHangs ? new Promise<void>(() => undefined) : Promise.resolve()),
      },
    });
    await app.ready();
  });
  afterAll(() => app.close());

  it("/healthz answers while the process is alive", async () => {
    const response = await app.inject("/healthz");
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: "ok" });
  });

  it("/readyz is 200 when every check passes", async () => {
    const response = await app.inject("/readyz");
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: "ready", checks: { nats: "ok", postgres: "ok" } });
  });

  it("/readyz is 503 with the failing check's message and no stack", async () => {
    state.natsDown = true;
    try {
      const response = await app.inject("/readyz");
      expect(response.statusCode).toBe(503);
      expect(response.headers["retry-after"]).toBe("5");
      expect(response.json()).toEqual({
        status: "not_ready",
        checks: { nats: "connection refused", postgres: "ok" },
      });
      expect(response.body).not.toContain("secret/path");
    } finally {
      state.natsDown = false;
    }
  });

  it("/readyz is 503 when a check hangs past its timeout", async () => {
    state.postgresHangs = true;
    try {
      const started = performance.now();
      const response = await app.inject("/readyz");
      expect(performance.now() - started).toBeLessThan(1000);
      expect(response.statusCode).toBe(503);
      expect(response.json().checks).toEqual({ nats: "ok", postgres: "no answer within 100 ms" });
    } finally {
      state.postgresHangs = false;
    }
  });

  it("/readyz is 503 while draining", async () => {
    state.draining = true;
    try {
      const response = await app.inject("/readyz");
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ status: "not_ready", checks: { draining: "shutting down" } });
    } finally {
      state.draining = false;
    }
  });

  it("/metrics serves Prometheus text with a counter we incremented", async () => {
    metrics.counter("requests_total", "requests", ["route"]).inc({ route: "chat" }, 3);
    const response = await app.inject("/metrics");
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe(metrics.registry.contentType);
    expect(response.body).toContain("# TYPE requests_total counter");
    expect(response.body).toContain('requests_total{route="chat",service="ops-test"} 3');
  });
});

describe("ops routes without metrics (a public port)", () => {
  it("serves the probes but no /metrics", async () => {
    const app = Fastify({ logger: false });
    registerOpsRoutes(app, { checks: {} });
    await app.ready();
    try {
      expect((await app.inject("/healthz")).statusCode).toBe(200);
      expect((await app.inject("/readyz")).statusCode).toBe(200);
      expect((await app.inject("/metrics")).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe("startOpsServer (real port)", () => {
  let server: OpsServer;
  const metrics = createMetrics("ops-server-test", { defaultMetrics: false });

  beforeAll(async () => {
    server = await startOpsServer({
      port: 0,
      host: "127.0.0.1",
      metrics,
      logger: silentLogger(),
      checks: { always: async () => undefined },
    });
  });
  afterAll(() => server.close());

  it("listens on an ephemeral port and serves the ops routes", async () => {
    expect(server.port).toBeGreaterThan(0);
    const base = `http://127.0.0.1:${server.port}`;
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { always: "ok" } });

    metrics.gauge("in_flight", "in-flight work").set(7);
    const scraped = await fetch(`${base}/metrics`);
    expect(scraped.headers.get("content-type")).toBe(metrics.registry.contentType);
    expect(await scraped.text()).toContain('in_flight{service="ops-server-test"} 7');
  });

  it("answers unknown routes with a JSON error", async () => {
    const response = await fetch(`http://127.0.0.1:${server.port}/nope`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { type: "not_found" } });
  });
});
