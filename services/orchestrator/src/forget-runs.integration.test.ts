import { randomBytes } from "node:crypto";
import type { Bus, ServedEndpoint } from "@agent-runtime/bus";
import { cleanupTestBus, createTestBus } from "@agent-runtime/bus/testing";
import {
  DeadLetter,
  Endpoints,
  FORGET_RUN_BATCH,
  MemoryAppendRequest,
  type ModelForgetRequest,
  QueueGroups,
  RunRequest,
  RuntimeError,
  Streams,
  Subjects,
  type ToolForgetRequest,
} from "@agent-runtime/contracts";
import { createPool, migrate } from "@agent-runtime/stores";
import { createLogger } from "@agent-runtime/telemetry";
import type pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { FORGET_MIGRATIONS, forgetRuns } from "./forget-runs.js";
import { Journal, type RunState } from "./journal.js";
import { EventPublisher } from "./run-events.js";
import { RunStore } from "./run-store.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const schema = `forget${randomBytes(4).toString("hex")}`;
const logger = createLogger({ service: "forget-runs-test", level: "silent" });
let pool: pg.Pool;
let bus: Bus;
let journal: Journal;
let served: ServedEndpoint[] = [];
let modelRequests: ModelForgetRequest[] = [];
let toolRequests: ToolForgetRequest[] = [];
/** When set, `model.forget` fails (a cache that cannot be reached). */
let modelDown = false;

const SECRET = "the-secret-words";

function runState(
  runId: string,
  options: {
    threadId?: string;
    userId?: string;
    parentRunId?: string;
    status?: RunState["status"];
    tenant?: string;
  } = {},
): RunState {
  const request: RunRequest = {
    v: 1,
    runId,
    tenant: options.tenant ?? "acme",
    agent: "assistant",
    input: [{ role: "user", content: `tell me ${SECRET}` }],
    ...(options.threadId ? { threadId: options.threadId } : {}),
    ...(options.userId ? { userId: options.userId } : {}),
    ...(options.parentRunId ? { parentRunId: options.parentRunId } : {}),
    priority: "interactive",
    createdAt: Date.now(),
    deadline: Date.now() + 60_000,
    stream: false,
    source: "runs",
  };
  const status = options.status ?? "completed";
  return {
    request,
    status,
    attempt: 1,
    startedAt: Date.now(),
    steps: 1,
    usage: { promptTokens: 10, completionTokens: 5, cachedTokens: 0, totalTokens: 15 },
    costUsd: 0.002,
    ...(status === "completed" ? { output: { role: "assistant" as const, content: `said ${SECRET}` } } : {}),
    ...(status === "failed"
      ? { error: { code: "upstream", message: `failed on ${SECRET}`, retryable: false } }
      : {}),
  };
}

/** A run with one tool step, journaled as the worker does, and its events in RUN_EVENTS. */
async function recordRun(runId: string, options: Parameters<typeof runState>[1] = {}) {
  await journal.write({
    run: runState(runId, options),
    step: {
      recorded: {
        step: 0,
        assistant: {
          role: "assistant",
          content: `thinking about ${SECRET}`,
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "lookup", arguments: `{"q":"${SECRET}"}` } },
          ],
        },
        toolMessages: [{ role: "tool", content: `found ${SECRET}`, tool_call_id: "call_1" }],
        usage: { promptTokens: 10, completionTokens: 5, cachedTokens: 0, totalTokens: 15 },
        costUsd: 0.002,
      },
      details: { model: "small", provider: "main", latencyMs: 12, route: "fast" },
    },
  });
  const events = new EventPublisher(bus, runId, 1);
  events.emit({ type: "delta", step: 0, content: `streamed ${SECRET}` });
  await bus.nc.flush();
}

async function storedEvents(runId: string): Promise<number> {
  const jsm = await bus.jsm();
  const info = await jsm.streams.info(bus.streamName(Streams.runEvents), {
    subjects_filter: bus.subject(Subjects.runEvents(runId)),
  });
  return Object.values(info.state.subjects ?? {}).reduce((sum, count) => sum + count, 0);
}

const meta = (tenant = "acme") => ({
  v: 1 as const,
  tenant,
  requestId: `forget-${randomBytes(4).toString("hex")}`,
  deadline: Date.now() + 20_000,
});

const rowText = async (runId: string) =>
  (await pool.query<{ row: string }>("SELECT r::text AS row FROM runs r WHERE id = $1", [runId])).rows[0]
    ?.row ?? "";
const stepText = async (runId: string) =>
  (
    await pool.query<{ row: string }>("SELECT s::text AS row FROM run_steps s WHERE run_id = $1", [runId])
  ).rows
    .map((row) => row.row)
    .join("\n");

beforeAll(async () => {
  pool = await createPool({ url: DATABASE_URL, schema, applicationName: "forget-runs-test" });
  await RunStore.create(pool);
  // twice: idempotent, on the partitioned table
  await migrate(pool, "orchestrator-forget", FORGET_MIGRATIONS);
  await migrate(pool, "orchestrator-forget", FORGET_MIGRATIONS);
  journal = new Journal(pool);
  bus = await createTestBus();
  await bus.ensureStreams(["RUN_EVENTS", "RUNS", "DEAD_LETTERS", "THREAD_TURNS"]);
  served = [
    bus.serve(
      Endpoints.modelForget,
      async (request) => {
        if (modelDown)
          throw new RuntimeError("unavailable", "the model caches are away", { retryable: false });
        modelRequests.push(request);
        return { deleted: { responses: 0, idempotency: 0, embeddings: 0 } };
      },
      { queue: QueueGroups.modelProxy, maxInFlight: 10 },
    ),
    bus.serve(
      Endpoints.toolForget,
      async (request) => {
        toolRequests.push(request);
        return { deleted: { records: 0, cached: 0 } };
      },
      { queue: QueueGroups.toolExecutor, maxInFlight: 10 },
    ),
  ];
  await bus.nc.flush();
});

beforeEach(() => {
  modelRequests = [];
  toolRequests = [];
  modelDown = false;
});

afterAll(async () => {
  for (const endpoint of served) await endpoint.stop();
  await cleanupTestBus(bus);
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe("run.forget", () => {
  it("scrubs a thread's runs, their delegated runs and steps, purges their events, keeps totals", async () => {
    const id = randomBytes(4).toString("hex");
    const thread = `thread-${id}`;
    await recordRun(`run-a-${id}`, { threadId: thread, userId: "ann" });
    await recordRun(`run-b-${id}`, { threadId: thread, userId: "ann", status: "failed" });
    await recordRun(`run-child-${id}`, { userId: "ann", parentRunId: `run-a-${id}` });
    await recordRun(`run-other-${id}`, { threadId: `other-${id}`, userId: "ann" });
    await recordRun(`run-tenant-${id}`, { threadId: thread, userId: "ann", tenant: "globex" });
    expect(await storedEvents(`run-a-${id}`)).toBe(1);
    // a turn of the thread on its way to memory, and one of another thread
    const turn = (threadId: string) => ({
      meta: meta(),
      threadId,
      messages: [{ id: `${threadId}:0`, message: { role: "user" as const, content: `said ${SECRET}` } }],
    });
    for (const threadId of [thread, `other-${id}`])
      await bus.publishDurable(Subjects.threadTurns("acme", threadId), MemoryAppendRequest, turn(threadId), {
        msgId: `turn-${threadId}`,
      });
    const turnsOf = async (threadId: string) => {
      const jsm = await bus.jsm();
      const subject = bus.subject(Subjects.threadTurns("acme", threadId));
      const info = await jsm.streams.info(bus.streamName(Streams.threadTurns), { subjects_filter: subject });
      return info.state.subjects?.[subject] ?? 0;
    };
    expect(await turnsOf(thread)).toBe(1);

    const reply = await forgetRuns({ bus, pool, logger }, { meta: meta(), threadIds: [thread] });
    expect(reply).toMatchObject({ runs: 3, steps: 3, cancelled: 0, more: false });
    expect(reply.threadIds).toEqual([thread]);

    for (const runId of [`run-a-${id}`, `run-b-${id}`, `run-child-${id}`]) {
      expect(await rowText(runId)).not.toContain(SECRET);
      expect(await rowText(runId)).not.toContain("ann");
      expect(await stepText(runId)).not.toContain(SECRET);
      expect(await storedEvents(runId)).toBe(0);
    }
    // what stays: status, totals, the step's accounting
    const kept = await new RunStore(pool).get("acme", `run-b-${id}`);
    expect(kept).toMatchObject({
      status: "failed",
      threadId: null,
      userId: null,
      output: null,
      error: { code: "upstream", message: "forgotten", retryable: false },
      costUsd: 0.002,
    });
    const step = await pool.query(
      "SELECT model, provider, prompt_tokens, latency_ms FROM run_steps WHERE run_id = $1",
      [`run-a-${id}`],
    );
    expect(step.rows[0]).toMatchObject({
      model: "small",
      provider: "main",
      prompt_tokens: 10,
      latency_ms: 12,
    });
    // another thread and another tenant's thread of the same id are untouched
    expect(await rowText(`run-other-${id}`)).toContain(SECRET);
    expect(await rowText(`run-tenant-${id}`)).toContain(SECRET);
    expect(await storedEvents(`run-other-${id}`)).toBe(1);
    expect(await turnsOf(thread)).toBe(0);
    expect(await turnsOf(`other-${id}`)).toBe(1);

    // the model proxy and the tool executor were told which runs, users, threads and tools
    expect(modelRequests).toHaveLength(1);
    expect(modelRequests[0]).toMatchObject({ userIds: ["ann", ""], threadIds: [thread] });
    expect([...(modelRequests[0]?.runIds ?? [])].sort()).toEqual(
      [`run-a-${id}`, `run-b-${id}`, `run-child-${id}`].sort(),
    );
    expect(toolRequests[0]).toMatchObject({ userIds: ["ann"], tools: ["lookup"] });

    // asking again finds nothing more
    const again = await forgetRuns({ bus, pool, logger }, { meta: meta(), threadIds: [thread] });
    expect(again).toMatchObject({ runs: 0, steps: 0, more: false });
  });

  it("cancels a user's runs still going before scrubbing them, and tells their workers", async () => {
    const id = randomBytes(4).toString("hex");
    const user = `user-${id}`;
    await recordRun(`run-going-${id}`, { userId: user, status: "running" });
    await recordRun(`run-done-${id}`, { userId: user, threadId: `t-${id}` });
    const heard: string[] = [];
    const subscription = bus.nc.subscribe(bus.subject(Subjects.runCancelled(`run-going-${id}`)), {
      callback: (_error, message) => {
        heard.push(message.subject);
      },
    });
    await bus.nc.flush();
    const reply = await forgetRuns(
      { bus, pool, logger, settleMs: 10 },
      { meta: meta(), threadIds: [], userId: user },
    );
    subscription.unsubscribe();
    expect(reply).toMatchObject({ runs: 2, cancelled: 1, threadIds: [`t-${id}`] });
    expect(heard).toHaveLength(1);
    expect(await new RunStore(pool).status(`run-going-${id}`)).toBe("cancelled");
    expect(await rowText(`run-going-${id}`)).not.toContain(SECRET);
    expect(modelRequests[0]).toMatchObject({ userIds: [user, ""], threadIds: [`t-${id}`] });
    // and once more after the cancelled worker settled: that run's records
    expect(modelRequests[1]).toMatchObject({ runIds: [`run-going-${id}`], userIds: [] });
    expect(toolRequests.at(-1)).toMatchObject({ runIds: [`run-going-${id}`] });
  });

  it("leaves the runs findable when a cache cannot be reached, so that a retry completes the forget", async () => {
    const id = randomBytes(4).toString("hex");
    const thread = `thread-${id}`;
    await recordRun(`run-kept-${id}`, { threadId: thread });
    modelDown = true;
    await expect(
      forgetRuns({ bus, pool, logger }, { meta: meta(), threadIds: [thread] }),
    ).rejects.toMatchObject({
      code: "unavailable",
    });
    // nothing was scrubbed yet: the run is still the thread's
    expect(await rowText(`run-kept-${id}`)).toContain(SECRET);
    modelDown = false;
    const retried = await forgetRuns({ bus, pool, logger }, { meta: meta(), threadIds: [thread] });
    expect(retried.runs).toBe(1);
    expect(await rowText(`run-kept-${id}`)).not.toContain(SECRET);
  });

  it("works through a large thread in batches, saying when more are left", async () => {
    const id = randomBytes(4).toString("hex");
    const thread = `big-${id}`;
    const count = FORGET_RUN_BATCH + 5;
    await Promise.all(
      Array.from({ length: count }, (_, index) =>
        journal.write({ run: runState(`run-${index}-${id}`, { threadId: thread }) }),
      ),
    );
    const first = await forgetRuns({ bus, pool, logger }, { meta: meta(), threadIds: [thread] });
    expect(first).toMatchObject({ runs: FORGET_RUN_BATCH, more: true });
    const second = await forgetRuns({ bus, pool, logger }, { meta: meta(), threadIds: [thread] });
    expect(second).toMatchObject({ runs: 5, more: false });
    const ofThread = await pool.query(
      "SELECT count(*)::int AS n FROM runs WHERE id LIKE $1 AND request::text LIKE $2",
      [`%-${id}`, `%${SECRET}%`],
    );
    expect(ofThread.rows[0].n).toBe(0);
  });

  it("erases the target's run requests still queued in RUNS and its dead letters, no one else's", async () => {
    const id = randomBytes(4).toString("hex");
    const thread = `queued-${id}`;
    const queued = (runId: string, threadId: string, tenant = "acme") => {
      const request = runState(runId, { threadId, tenant, status: "queued" }).request;
      return { ...request, priority: "batch" as const };
    };
    const requests = [
      queued(`run-q-${id}`, thread),
      queued(`run-q2-${id}`, `other-${id}`),
      queued(`run-q3-${id}`, thread, "globex"),
    ];
    const store = new RunStore(pool);
    for (const request of requests) {
      await store.register(request);
      await bus.publishDurable(Subjects.runs("batch", request.tenant), RunRequest, request, {
        msgId: request.runId,
      });
    }
    const letter = (threadId: string, origin: string) => ({
      origin,
      subject: "memory.turns.acme.x",
      reason: "gave up",
      deliveries: 6,
      ts: Date.now(),
      payload: JSON.stringify({
        meta: meta(),
        threadId,
        messages: [{ id: "m1", message: { role: "user", content: `said ${SECRET}` } }],
      }),
    });
    await bus.publishDurable(
      Subjects.deadLetter("thread-turns"),
      DeadLetter,
      letter(thread, "thread-turns"),
      {
        msgId: `dl-${id}-1`,
      },
    );
    await bus.publishDurable(
      Subjects.deadLetter("thread-turns"),
      DeadLetter,
      letter(`other-${id}`, "thread-turns"),
      {
        msgId: `dl-${id}-2`,
      },
    );
    const left = async (stream: string, subject: string) => {
      const jsm = await bus.jsm();
      const info = await jsm.streams.info(bus.streamName(stream), { subjects_filter: bus.subject(subject) });
      const texts: string[] = [];
      for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
        const message = await jsm.streams.getMessage(bus.streamName(stream), { seq }).catch(() => null);
        if (message) texts.push(message.string());
      }
      return texts.filter((text) => text.includes(id));
    };
    expect(await left(Streams.runs, "runs.>")).toHaveLength(3);
    expect(await left(Streams.deadLetters, "dlq.>")).toHaveLength(2);

    const reply = await forgetRuns(
      { bus, pool, logger, settleMs: 10 },
      { meta: meta(), threadIds: [thread] },
    );
    expect(reply).toMatchObject({ runs: 1, cancelled: 1 });
    const runs = (await left(Streams.runs, "runs.>")).map(
      (text) => z.object({ runId: z.string() }).parse(JSON.parse(text)).runId,
    );
    expect(runs.sort()).toEqual([`run-q2-${id}`, `run-q3-${id}`]);
    const letters = await left(Streams.deadLetters, "dlq.>");
    expect(letters).toHaveLength(1);
    expect(letters[0]).toContain(`other-${id}`);
  });
});
