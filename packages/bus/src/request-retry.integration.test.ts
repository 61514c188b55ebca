import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { defineEndpoint, type RuntimeError } from "@agent-runtime/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Bus } from "./bus.js";
import { retryDelay } from "./exchange.js";
import { TestEndpoints } from "./fixtures/endpoints.js";
import { cleanupTestBus, createTestBus } from "./testing.js";

let bus: Bus;
let survivor: Bus;
let children: ChildProcessWithoutNullStreams[] = [];

beforeEach(async () => {
  bus = await createTestBus();
  survivor = await createTestBus({ prefix: bus.prefix });
});
afterEach(async () => {
  for (const child of children) child.kill("SIGKILL");
  children = [];
  await survivor.close();
  await cleanupTestBus(bus);
});

async function waitFor(probe: () => boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Starts a replica in its own process that takes requests and never answers. */
async function hangingReplica(endpoint: "read" | "write") {
  const child = spawn(
    process.execPath,
    [
      "--conditions=source",
      "--import",
      "tsx",
      fileURLToPath(new URL("./fixtures/hanging-responder.ts", import.meta.url)),
      bus.prefix,
      endpoint,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  ) as unknown as ChildProcessWithoutNullStreams;
  children.push(child);
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  await waitFor(() => output.includes("ready"));
  return { child, took: (n: number) => output.includes(`took ${n}`) };
}

function survivorServes(endpoint: "read" | "write", calls: number[]) {
  survivor.serve(
    TestEndpoints[endpoint],
    async ({ n }) => {
      calls.push(n);
      return { n, by: "survivor" };
    },
    { queue: "workers", maxInFlight: 8 },
  );
  return survivor.nc.flush();
}

describe("request attempts", () => {
  it("re-sends a retry-safe request to another replica when its replica is killed mid-request", async () => {
    const replica = await hangingReplica("read");
    const started = Date.now();
    // the killed replica is the only one listening when the request goes out
    const retries: [number, string][] = [];
    const answer = bus.request(
      TestEndpoints.read,
      { n: 1 },
      {
        timeoutMs: 60_000,
        beforeRetry: (attempt, cause) => {
          retries.push([attempt, cause.code]);
          return true;
        },
      },
    );
    await waitFor(() => replica.took(1));
    const calls: number[] = [];
    await survivorServes("read", calls);
    replica.child.kill("SIGKILL");

    await expect(answer).resolves.toEqual({ n: 1, by: "survivor" });
    const elapsed = Date.now() - started;
    // no keep-alive for 3 × 1 s gives the dead replica up; the deadline was 60 s away
    expect(elapsed).toBeGreaterThanOrEqual(2_900);
    expect(elapsed).toBeLessThan(6_000);
    expect(calls).toEqual([1]);
    expect(retries).toEqual([[2, "unavailable"]]);
  });

  it("does not re-send a request that is not retry-safe; it fails fast instead of at the deadline", async () => {
    const replica = await hangingReplica("write");
    const started = Date.now();
    const answer = bus.request(TestEndpoints.write, { n: 2 }, { timeoutMs: 60_000, keepAliveMs: 200 }).then(
      () => undefined,
      (error: unknown) => error as RuntimeError,
    );
    await waitFor(() => replica.took(2));
    const calls: number[] = [];
    await survivorServes("write", calls);
    replica.child.kill("SIGKILL");

    const error = await answer;
    expect(error?.code).toBe("unavailable");
    expect(error?.message).toMatch(/stopped answering.*may or may not have acted/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(calls).toEqual([]);
  });

  it("keeps waiting for a slow replica that is alive", async () => {
    let calls = 0;
    bus.serve(
      TestEndpoints.read,
      async ({ n }) => {
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 1_200));
        return { n, by: "slow" };
      },
      { queue: "workers", maxInFlight: 2 },
    );
    await bus.nc.flush();
    // silence would be given up after 3 × 100 ms; keep-alives every 100 ms prevent it
    await expect(survivor.request(TestEndpoints.read, { n: 3 }, { keepAliveMs: 100 })).resolves.toEqual({
      n: 3,
      by: "slow",
    });
    expect(calls).toBe(1);
  });

  it("gives a retry-safe request to another replica when an attempt outlasts its limit", async () => {
    const calls: string[] = [];
    bus.serve(
      TestEndpoints.read,
      async ({ n }) => {
        calls.push("slow");
        // stuck on its first request only
        if (calls.length === 1) await new Promise((resolve) => setTimeout(resolve, 5_000));
        return { n, by: "slow" };
      },
      { queue: "workers", maxInFlight: 2 },
    );
    await bus.nc.flush();
    const started = Date.now();
    const answer = survivor.request(TestEndpoints.read, { n: 4 }, { attemptTimeoutMs: 300 });
    await waitFor(() => calls.length === 1);
    const third = await createTestBus({ prefix: bus.prefix });
    try {
      third.serve(
        TestEndpoints.read,
        async ({ n }) => {
          calls.push("fast");
          return { n, by: "fast" };
        },
        { queue: "workers", maxInFlight: 2 },
      );
      await third.nc.flush();
      const reply = await answer;
      expect(reply.n).toBe(4);
      expect(calls).toHaveLength(2);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(2_000);
    } finally {
      await third.close();
    }
  });

  it("fails a request that is not retry-safe with `timeout` when its attempt outlasts its limit", async () => {
    let calls = 0;
    bus.serve(
      TestEndpoints.write,
      async () => {
        calls++;
        return new Promise(() => undefined);
      },
      { queue: "workers", maxInFlight: 2 },
    );
    await bus.nc.flush();
    const error = (await survivor
      .request(TestEndpoints.write, { n: 5 }, { attemptTimeoutMs: 200, timeoutMs: 5_000 })
      .catch((e: unknown) => e)) as RuntimeError;
    expect(error.code).toBe("timeout");
    expect(calls).toBe(1);
  });

  it("answers deadline_exceeded, not retryable, when the deadline passes unanswered", async () => {
    bus.serve(TestEndpoints.read, () => new Promise(() => undefined), { queue: "workers", maxInFlight: 2 });
    await bus.nc.flush();
    const started = Date.now();
    const error = (await survivor
      .request(TestEndpoints.read, { n: 6 }, { timeoutMs: 400 })
      .catch((e: unknown) => e)) as RuntimeError;
    expect(error.code).toBe("deadline_exceeded");
    expect(error.retryable).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it("answers deadline_exceeded at once for a request whose deadline passed before it was sent", async () => {
    const WithMeta = defineEndpoint(
      "test.meta",
      z.object({ meta: z.object({ deadline: z.number() }) }),
      z.object({}),
      { retrySafe: true },
    );
    await expect(survivor.request(WithMeta, { meta: { deadline: Date.now() - 1 } })).rejects.toMatchObject({
      code: "deadline_exceeded",
      retryable: false,
    });
  });

  it("re-sends a request a full replica turned away, even when it is not retry-safe", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    bus.serve(
      TestEndpoints.write,
      async ({ n }) => {
        await gate;
        return { n, by: "full" };
      },
      { queue: "workers", maxInFlight: 1 },
    );
    // sees every copy of the request the requester sends
    let sent = 0;
    const observer = survivor.nc.subscribe(survivor.subject(TestEndpoints.write.subject), {
      callback: () => {
        sent++;
      },
    });
    await survivor.nc.flush();
    await bus.nc.flush();
    const busy = survivor.request(TestEndpoints.write, { n: 7 });
    await waitFor(() => sent === 1);

    const turnedAway = (await survivor
      .request(TestEndpoints.write, { n: 8 }, { timeoutMs: 5_000 })
      .catch((e: unknown) => e)) as RuntimeError;
    expect(turnedAway.code).toBe("overloaded");
    expect(sent).toBe(1 + 3);

    const once = await survivor
      .request(TestEndpoints.write, { n: 9 }, { retry: false })
      .catch((e: unknown) => e as RuntimeError);
    expect((once as RuntimeError).code).toBe("overloaded");
    expect(sent).toBe(1 + 3 + 1);

    const vetoed = await survivor
      .request(TestEndpoints.write, { n: 10 }, { beforeRetry: () => false })
      .catch((e: unknown) => e as RuntimeError);
    expect((vetoed as RuntimeError).code).toBe("overloaded");
    expect(sent).toBe(1 + 3 + 1 + 1);

    release();
    await expect(busy).resolves.toEqual({ n: 7, by: "full" });
    observer.unsubscribe();
  });

  it("retries when no replica is listening, then reports it as unavailable", async () => {
    const started = Date.now();
    await expect(
      survivor.request(TestEndpoints.write, { n: 12 }, { timeoutMs: 2_000 }),
    ).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringMatching(/no service is answering/),
    });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("stops waiting when the caller's signal aborts", async () => {
    bus.serve(TestEndpoints.read, () => new Promise(() => undefined), { queue: "workers", maxInFlight: 2 });
    await bus.nc.flush();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(
      survivor.request(TestEndpoints.read, { n: 11 }, { timeoutMs: 10_000, signal: controller.signal }),
    ).rejects.toMatchObject({ code: "cancelled" });
  });

  it("spaces retries with jittered, growing, capped delays", () => {
    const backoff = { initialMs: 100, maxMs: 300 };
    for (let i = 0; i < 50; i++) {
      const first = retryDelay(1, backoff);
      expect(first).toBeGreaterThanOrEqual(50);
      expect(first).toBeLessThanOrEqual(100);
      const capped = retryDelay(6, backoff);
      expect(capped).toBeGreaterThanOrEqual(150);
      expect(capped).toBeLessThanOrEqual(300);
    }
  });
});
