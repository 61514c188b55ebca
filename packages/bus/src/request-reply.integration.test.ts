import { defineEndpoint, RuntimeError } from "@agent-runtime/contracts";
import { headers } from "@nats-io/nats-core";
import { context, TraceFlags, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Bus } from "./bus.js";
import { decodeText, encodeJson } from "./codec.js";
import { cleanupTestBus, createTestBus } from "./testing.js";

const Add = defineEndpoint(
  "test.add",
  z.object({ a: z.number(), b: z.number() }),
  z.object({ sum: z.number() }),
);

let bus: Bus;
let other: Bus;

// What telemetry's start-up does in a service: an active-context manager.
beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});

beforeEach(async () => {
  bus = await createTestBus();
  other = await createTestBus({ prefix: bus.prefix });
});
afterEach(async () => {
  await other.close();
  await cleanupTestBus(bus);
});

describe("request/reply", () => {
  it("answers a valid request across connections", async () => {
    bus.serve(Add, async ({ a, b }) => ({ sum: a + b }), { queue: "adders", maxInFlight: 4 });
    await bus.nc.flush();
    await expect(other.request(Add, { a: 2, b: 3 })).resolves.toEqual({ sum: 5 });
  });

  it("rejects an invalid request with a validation error naming the field", async () => {
    bus.serve(Add, async ({ a, b }) => ({ sum: a + b }), { queue: "adders", maxInFlight: 4 });
    await bus.nc.flush();
    const error = await other.request(Add, { a: 2, b: "three" } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe("validation");
    expect((error as RuntimeError).message).toMatch(/b:/);
  });

  it("rejects an invalid reply on the caller side", async () => {
    bus.serve(Add, async () => ({ total: 1 }) as never, { queue: "adders", maxInFlight: 4 });
    await bus.nc.flush();
    const error = await other.request(Add, { a: 1, b: 1 }).catch((e: unknown) => e);
    expect((error as RuntimeError).code).toBe("upstream");
    expect((error as RuntimeError).message).toMatch(/sum/);
  });

  it("rejects a body that is not JSON", async () => {
    bus.serve(Add, async ({ a, b }) => ({ sum: a + b }), { queue: "adders", maxInFlight: 4 });
    await bus.nc.flush();
    const reply = await other.nc.request(other.subject("test.add"), new TextEncoder().encode("{nope"), {
      timeout: 2000,
    });
    expect(JSON.parse(decodeText(reply.data))).toMatchObject({ ok: false, error: { code: "validation" } });
  });

  it("carries handler errors as typed errors", async () => {
    bus.serve(
      Add,
      async () => {
        throw new RuntimeError("not_found", "no such thing");
      },
      { queue: "adders", maxInFlight: 4 },
    );
    await bus.nc.flush();
    await expect(other.request(Add, { a: 1, b: 1 })).rejects.toMatchObject({ code: "not_found" });
  });

  it("hides unexpected errors behind `internal`", async () => {
    bus.serve(
      Add,
      async () => {
        throw new Error("secret stack detail");
      },
      { queue: "adders", maxInFlight: 4 },
    );
    await bus.nc.flush();
    const error = (await other.request(Add, { a: 1, b: 1 }).catch((e: unknown) => e)) as RuntimeError;
    expect(error.code).toBe("internal");
    expect(error.message).not.toMatch(/secret/);
  });

  it("answers overloaded at once when the in-flight bound is hit", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    bus.serve(
      Add,
      async ({ a, b }) => {
        await gate;
        return { sum: a + b };
      },
      { queue: "adders", maxInFlight: 2 },
    );
    await bus.nc.flush();
    const slow = [other.request(Add, { a: 1, b: 1 }), other.request(Add, { a: 2, b: 2 })];
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    const third = await other.request(Add, { a: 3, b: 3 }, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect((third as RuntimeError).code).toBe("overloaded");
    expect((third as RuntimeError).retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(4000);
    release();
    await expect(Promise.all(slow)).resolves.toEqual([{ sum: 2 }, { sum: 4 }]);
  });

  it("reports no responders and an exhausted deadline as typed errors", async () => {
    await expect(other.request(Add, { a: 1, b: 1 }, { timeoutMs: 200 })).rejects.toMatchObject({
      code: "unavailable",
    });
    bus.serve(Add, () => new Promise(() => undefined), { queue: "adders", maxInFlight: 2 });
    await bus.nc.flush();
    await expect(other.request(Add, { a: 1, b: 1 }, { timeoutMs: 200 })).rejects.toMatchObject({
      code: "deadline_exceeded",
    });
  });

  it("passes the deadline and trace context across the hop", async () => {
    let seenTraceId: string | undefined;
    let seenDeadline = 0;
    bus.serve(
      Add,
      async ({ a, b }, ctx) => {
        seenTraceId = trace.getSpanContext(context.active())?.traceId;
        seenDeadline = ctx.deadline;
        return { sum: a + b };
      },
      { queue: "adders", maxInFlight: 2 },
    );
    await bus.nc.flush();
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parent = trace.setSpanContext(context.active(), {
      traceId,
      spanId: "00f067aa0ba902b7",
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    const before = Date.now();
    await context.with(parent, () => other.request(Add, { a: 1, b: 2 }, { timeoutMs: 3000 }));
    expect(seenTraceId).toBe(traceId);
    expect(seenDeadline).toBeGreaterThanOrEqual(before + 2900);
    expect(seenDeadline).toBeLessThanOrEqual(Date.now() + 3000);
  });

  it("answers a raw request carrying a traceparent header", async () => {
    let seenTraceId: string | undefined;
    bus.serve(
      Add,
      async ({ a, b }) => {
        seenTraceId = trace.getSpanContext(context.active())?.traceId;
        return { sum: a + b };
      },
      { queue: "adders", maxInFlight: 2 },
    );
    await bus.nc.flush();
    const h = headers();
    h.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    await other.nc.request(other.subject("test.add"), encodeJson({ a: 1, b: 1 }), {
      timeout: 2000,
      headers: h,
    });
    expect(seenTraceId).toBe("0af7651916cd43dd8448eb211c80319c");
  });
});
