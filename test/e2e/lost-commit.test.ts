/**
 * The run journal commits without waiting for its WAL flush (JOURNAL_COMMIT=async) and the run's
 * message is acknowledged only once the flush is done. The worst moment: a run is over, its client
 * has heard the answer, its writes are committed but not on disk, and then the worker dies and
 * Postgres crashes. The writes are lost; the run's message comes back, the run is made again and
 * ends with the answer its client heard: the model calls are answered from the model proxy's
 * idempotency records (no provider call) and the shipment keyed by run, step and call position is
 * not made twice.
 *
 * The orchestrator alone uses a private Postgres whose WAL writer waits 10 s (and whose background
 * writer and autovacuum are off), so little else flushes the WAL in that window.
 */
import type { Bus } from "@agent-runtime/bus";
import { createTestBus } from "@agent-runtime/bus/testing";
import type { RunEvent } from "@agent-runtime/contracts";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PrivatePostgres, startPrivatePostgres } from "../support/private-postgres.js";
import { type ServiceProcess, startServiceProcess } from "../support/processes.js";
import { publishShipmentRun, type ShippingHook, startShippingHook } from "../support/shipping.js";
import { type Stack, startStack } from "../support/stack.js";

let fake: FakeOpenAI;
let stack: Stack;
let bus: Bus;
let hook: ShippingHook;
let database: PrivatePostgres;
const processes: ServiceProcess[] = [];

beforeAll(async () => {
  database = await startPrivatePostgres({
    label: "lost-commit",
    database: "journal",
    settings: { wal_writer_delay: "10s", bgwriter_lru_maxpages: "0", autovacuum: "off" },
  });
  hook = await startShippingHook();
  fake = await startFakeOpenAI();
  // no fixed call ids: a model call that reached the model again would answer with other ids
  fake.setHandler((body) => {
    const result = body.messages.find((message) => message.role === "tool");
    if (!result) return { toolCalls: [{ name: "ship", arguments: { order: 7 } }] };
    return { content: `done: ${String(result.content)}` };
  });
  stack = await startStack({
    bootstrapApiKey: "sk-lost-commit-tests",
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: hook.configPath },
    without: ["orchestrator"],
  });
  bus = await createTestBus({ prefix: stack.isolation.natsPrefix });
}, 120_000);

afterAll(async () => {
  for (const process of processes) await process.stop("SIGKILL");
  await bus?.close();
  await stack?.stop();
  await fake?.close();
  hook?.close();
  await database?.close();
});

const workerEnv = (failpoints: string) => ({
  ...stack.env,
  DATABASE_URL: database.url,
  JOURNAL_COMMIT: "async",
  RUN_ACK_WAIT_MS: "1000",
  OPS_PORT: "0",
  LOG_LEVEL: "info",
  FAILPOINTS: failpoints,
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function runRow(runId: string): Promise<{ status: string; output: unknown } | undefined> {
  const client = new pg.Client({ connectionString: database.url });
  client.on("error", () => undefined);
  await client.connect();
  try {
    await client.query(`SET search_path TO "${stack.isolation.schema}"`);
    const result = await client.query<{ status: string; output: unknown }>(
      "SELECT status, output FROM runs WHERE id = $1",
      [runId],
    );
    return result.rows[0];
  } finally {
    await client.end();
  }
}

const finished = (events: RunEvent[]) =>
  events.flatMap((event) => (event.type === "run-finished" ? [event] : []));

describe("a journal write lost before its flush", () => {
  it("runs the turn again from its message, to the answer its client heard, acting and calling nothing twice", async () => {
    const doomed = await startServiceProcess("orchestrator", workerEnv("before-journal-flush"));
    processes.push(doomed);
    const { runId, events } = await publishShipmentRun(bus, { source: "chat" });
    // over and announced, then the worker dies before the flush (its message is not acked)
    await until(() => doomed.child.signalCode !== null, 30_000);
    expect(doomed.child.signalCode).toBe("SIGKILL");
    const heard = finished(events);
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({ status: "completed", output: { content: 'done: {"shipped":true}' } });
    // committed: every reader sees it
    expect(await runRow(runId)).toMatchObject({ status: "completed" });
    const providerCalls = fake.chatRequests().length;
    expect(providerCalls).toBe(2);
    expect(hook.calls).toHaveLength(1);

    await database.crash();
    await database.start();
    // not flushed: the crash took the run's end (an earlier write of the run may have reached the
    // disk with someone else's flush; the WAL is replayed in order, so what is left is a prefix)
    expect((await runRow(runId))?.status).not.toBe("completed");

    const successor = await startServiceProcess("orchestrator", workerEnv(""));
    processes.push(successor);
    await until(async () => (await runRow(runId))?.status === "completed", 30_000);
    expect((await runRow(runId))?.output).toEqual(heard[0]!.type === "run-finished" && heard[0]!.output);
    // both model calls answered from the proxy's idempotency records; one shipment
    expect(fake.chatRequests().length).toBe(providerCalls);
    expect(hook.calls).toHaveLength(1);
    await until(() => finished(events).length === 2, 10_000);
    expect(finished(events)[1]).toMatchObject({
      status: "completed",
      output: { content: 'done: {"shipped":true}' },
    });
    await successor.stop("SIGTERM");
  }, 120_000);
});
