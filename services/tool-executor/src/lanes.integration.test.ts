import type { Bus } from "@agent-runtime/bus";
import { createTestBus, uniquePrefix } from "@agent-runtime/bus/testing";
import { Endpoints, type Priority, type ToolExecReply } from "@agent-runtime/contracts";
import { createLogger } from "@agent-runtime/telemetry";
import { defineTool } from "@agent-runtime/tools";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { loadConfig } from "./config.js";
import { type RunningToolExecutor, startToolExecutor } from "./service.js";

const prefix = uniquePrefix("telane");
const schema = prefix.toLowerCase();
let replicaA: RunningToolExecutor;
let replicaB: RunningToolExecutor;
let client: Bus;
let active = 0;
let peak = 0;
let batchActive = 0;
let batchPeak = 0;
const started: string[] = [];
const actions: string[] = [];

/** Two replicas on one NATS queue group and one Redis namespace, each hosting the same tools. */
async function startReplica(): Promise<RunningToolExecutor> {
  const replica = await startToolExecutor(
    loadConfig({
      NATS_PREFIX: prefix,
      DATABASE_SCHEMA: schema,
      REDIS_PREFIX: `${prefix}:`,
      OPS_PORT: "0",
    }),
    { logger: createLogger({ service: "tool-executor", level: "silent" }) },
  );
  replica.registry.addLocal(
    defineTool({
      name: "narrow",
      description: "four calls at a time across replicas",
      input: z.object({ tag: z.string(), lane: z.string() }),
      options: { maxConcurrency: 4, timeoutMs: 5000 },
      handler: async ({ tag, lane }) => {
        started.push(tag);
        active++;
        peak = Math.max(peak, active);
        if (lane === "batch") batchPeak = Math.max(batchPeak, ++batchActive);
        await new Promise((resolve) => setTimeout(resolve, 150));
        active--;
        if (lane === "batch") batchActive--;
        return { tag };
      },
    }),
    "builtin",
  );
  replica.registry.addLocal(
    defineTool({
      name: "act_once",
      description: "a side effect, two at a time",
      input: z.object({ what: z.string() }),
      options: { maxConcurrency: 2, sideEffects: true, timeoutMs: 5000 },
      handler: async ({ what }) => {
        actions.push(what);
        // the first call holds the batch slot long enough for the others to line up behind it
        await new Promise((resolve) => setTimeout(resolve, what === "holder" ? 1500 : 100));
        return { done: what };
      },
    }),
    "builtin",
  );
  return replica;
}

function call(
  name: string,
  args: Record<string, unknown>,
  priority: Priority,
  idempotencyKey?: string,
): Promise<ToolExecReply> {
  return client
    .request(Endpoints.toolBatch, {
      meta: {
        v: 1,
        tenant: "acme",
        requestId: `r-${Math.random()}`,
        runId: `run-${priority}`,
        priority,
        deadline: Date.now() + 30_000,
      },
      calls: [
        {
          callId: `c-${Math.random()}`,
          name,
          arguments: args,
          ...(idempotencyKey ? { idempotencyKey } : {}),
        },
      ],
    })
    .then((reply) => reply.results[0]!);
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const giveUpAt = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const queued = (tool: string) => replicaA.executor.queued(tool) + replicaB.executor.queued(tool);

beforeAll(async () => {
  replicaA = await startReplica();
  replicaB = await startReplica();
  client = await createTestBus({ prefix });
});

afterAll(async () => {
  await client?.close();
  await replicaA?.stop();
  await replicaB?.stop();
  const db = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db.end();
});

describe("tool concurrency by lane, across replicas", () => {
  it("runs an interactive call in the reserved slot while batch calls wait their turn, and fails none of them", async () => {
    const flood = Promise.all(
      Array.from({ length: 16 }, (_, index) =>
        call("narrow", { tag: `batch ${index}`, lane: "batch" }, "batch"),
      ),
    );
    // batch may hold 3 of the 4 slots; the other 13 wait in line on either replica
    await until(() => started.length === 3 && queued("narrow") === 13, "the batch calls to queue");
    const urgent = await call("narrow", { tag: "urgent", lane: "interactive" }, "interactive");
    expect(urgent.status).toBe("ok");
    expect(started.indexOf("urgent")).toBe(3);
    expect(queued("narrow")).toBeGreaterThanOrEqual(7);

    const replies = await flood;
    expect(replies.map((reply) => reply.status)).toEqual(Array(16).fill("ok"));
    expect(peak).toBe(4);
    expect(batchPeak).toBe(3);
  });

  it("refuses an interactive call at once when every slot is taken, as before", async () => {
    const batch = Promise.all(
      Array.from({ length: 3 }, (_, index) =>
        call("narrow", { tag: `full ${index}`, lane: "batch" }, "batch"),
      ),
    );
    await until(() => active === 3, "batch to hold its share");
    const first = call("narrow", { tag: "first", lane: "interactive" }, "interactive");
    await until(() => active === 4, "the reserved slot to be taken");
    const second = await call("narrow", { tag: "second", lane: "interactive" }, "interactive");
    expect(second.status).toBe("overloaded");
    expect(second.error).toMatchObject({ code: "overloaded", retryable: true });
    expect((await first).status).toBe("ok");
    expect((await batch).every((reply) => reply.status === "ok")).toBe(true);
  });

  it("a waiting side-effecting batch call acts once: it claims its key only when it holds a slot", async () => {
    // act_once: 2 slots, 1 for batch; the first call holds it
    const holder = call("act_once", { what: "holder" }, "batch", "key-holder");
    await until(() => actions.includes("holder"), "the first call to act");
    // the same call twice while it must wait (a redelivered batch step, say): the first waits without
    // its claim, so the second claims too and waits behind it
    const first = call("act_once", { what: "once" }, "batch", "key-once");
    await until(() => queued("act_once") === 1, "the first to wait");
    const second = call("act_once", { what: "once" }, "batch", "key-once");
    await until(() => queued("act_once") === 2, "the second to wait");
    expect((await holder).status).toBe("ok");
    const replies = await Promise.all([first, second]);
    expect(actions.filter((what) => what === "once")).toHaveLength(1);
    // whichever got a slot first acted (the two may wait on different replicas); the other replayed it
    expect(replies.every((reply) => reply.status === "ok")).toBe(true);
    expect(replies.map((reply) => reply.replayed).sort()).toEqual([false, true]);
    expect(replies.find((reply) => reply.replayed)?.output).toEqual({ done: "once" });
  });
});
