import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createLogger } from "@agent-runtime/telemetry";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { openServiceContext, type ServiceConnections } from "./context.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const logger = createLogger({ service: "context-test", level: "silent" });
const schemas: string[] = [];

function connections(overrides: Partial<ServiceConnections> = {}): ServiceConnections {
  const id = randomUUID().replaceAll("-", "").slice(0, 12);
  schemas.push(`ctx_${id}`);
  return {
    natsUrl: process.env.NATS_URL ?? "nats://127.0.0.1:4222",
    natsReplicas: 1,
    natsPrefix: `ctx-${id}`,
    databaseUrl: DATABASE_URL,
    databaseSchema: `ctx_${id}`,
    redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    redisPrefix: `ctx:${id}:`,
    opsPort: 0,
    ...overrides,
  };
}

afterAll(async () => {
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

describe("openServiceContext", () => {
  it("opens what the service asks for, serves the ops routes and stops in order", async () => {
    const context = await openServiceContext({
      name: "context-test",
      config: connections(),
      logger,
      postgres: true,
      redis: true,
      streams: ["USAGE"],
    });
    const { bus, pool, redis } = context;
    expect(await pool.query("SELECT current_schema() AS schema")).toMatchObject({
      rows: [{ schema: expect.stringMatching(/^ctx_/) }],
    });
    if (redis.status !== "ready") await once(redis, "ready");
    expect(await redis.set(`${context.name}:probe`, "1", "EX", 5)).toBe("OK");
    const ops = await context.startOps({ checks: { extra: async () => undefined } });
    const ready = await fetch(`http://127.0.0.1:${ops.port}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { nats: "ok", postgres: "ok", extra: "ok" } });
    await context.announce(["a part"]);

    // the service's own steps run first, in order, while the connections still answer
    const seen: string[] = [];
    context.onStop(async () => {
      seen.push(`first draining=${bus.isDraining}`);
      await pool.query("SELECT 1");
      seen.push("pool answered");
    });
    context.onStop(() => {
      seen.push(`second redis=${redis.status}`);
    });
    const stopping = context.stop();
    expect(context.stop()).toBe(stopping);
    await stopping;
    expect(seen).toEqual(["first draining=false", "pool answered", "second redis=ready"]);
    expect(bus.nc.isClosed()).toBe(true);
    await expect(pool.query("SELECT 1")).rejects.toThrow();
    await expect(redis.get(`${context.name}:probe`)).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${ops.port}/healthz`)).rejects.toThrow();
  });

  it("opens only the bus when the service asks for nothing else", async () => {
    const context = await openServiceContext({
      name: "context-test",
      config: connections(),
      logger,
      postgres: false,
      redis: false,
    });
    expect(context.pool).toBeUndefined();
    expect(context.redis).toBeUndefined();
    const ops = await context.startOps();
    const ready = await fetch(`http://127.0.0.1:${ops.port}/readyz`);
    expect(await ready.json()).toMatchObject({ checks: { nats: "ok" } });
    expect(
      Object.keys(
        ((await (await fetch(`http://127.0.0.1:${ops.port}/readyz`)).json()) as { checks: object }).checks,
      ),
    ).toEqual(["nats"]);
    await context.stop();
    expect(context.bus.nc.isClosed()).toBe(true);
  });

  it("closes the bus again when Postgres cannot be opened", async () => {
    const sockets = () => process.getActiveResourcesInfo().filter((kind) => kind === "TCPSocketWrap").length;
    const settle = () => new Promise((resolve) => setTimeout(resolve, 300));
    await settle(); // sockets of the tests before have closed
    const before = sockets();
    const error = await openServiceContext({
      name: "context-test",
      // a schema name Postgres cannot take: refused after the bus connected
      config: connections({ databaseSchema: "not a schema" }),
      logger,
      postgres: true,
      redis: false,
    }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(RangeError);
    await settle();
    expect(sockets()).toBe(before);
  });
});
