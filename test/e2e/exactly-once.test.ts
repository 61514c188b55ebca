/**
 * Exactly once at the worst moments: an orchestrator process SIGKILLs itself between two writes
 * (failpoints), another takes the run over. A run that is journaled as ended is announced from the
 * journal and nothing is called again; a tool step whose effects happened but whose step record
 * did not is made again without a second effect, even when the model proxy has no Redis (so the
 * model's answer, and its tool-call ids, differ on the second call).
 */
import type { Bus } from "@agent-runtime/bus";
import { createTestBus } from "@agent-runtime/bus/testing";
import type { RunEvent } from "@agent-runtime/contracts";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASE_URL } from "../support/isolation.js";
import { type ServiceProcess, startServiceProcess } from "../support/processes.js";
import { publishShipmentRun, type ShippingHook, startShippingHook } from "../support/shipping.js";
import { type Stack, startStack } from "../support/stack.js";

let fake: FakeOpenAI;
let stack: Stack;
let bus: Bus;
let db: pg.Client;
let hook: ShippingHook;
let proxy: ServiceProcess;
const processes: ServiceProcess[] = [];

beforeAll(async () => {
  hook = await startShippingHook();
  fake = await startFakeOpenAI();
  // no fixed call ids: a model call made again answers with other ids, as a real model does
  fake.setHandler((body) => {
    const result = body.messages.find((message) => message.role === "tool");
    if (!result) return { toolCalls: [{ name: "ship", arguments: { order: 7 } }] };
    return { content: `done: ${String(result.content)}` };
  });
  stack = await startStack({
    bootstrapApiKey: "sk-once-tests",
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: hook.configPath },
    without: ["orchestrator", "model-proxy"],
  });
  proxy = await startProxy();
  bus = await createTestBus({ prefix: stack.isolation.natsPrefix });
  db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  await db.query(`SET search_path TO "${stack.isolation.schema}"`);
}, 90_000);

afterAll(async () => {
  await proxy?.stop("SIGKILL");
  for (const process of processes) await process.stop("SIGKILL");
  await db?.end();
  await bus?.close();
  await stack?.stop();
  await fake?.close();
  hook?.close();
});

/** The model proxy without Redis: it keeps no idempotency record of a model call. */
const startProxy = () =>
  startServiceProcess("model-proxy", {
    ...stack.env,
    REDIS_URL: "redis://127.0.0.1:1",
    OPS_PORT: "0",
    LOG_LEVEL: "info",
  });

const workerEnv = (failpoints: string) => ({
  ...stack.env,
  RUN_ACK_WAIT_MS: "1000",
  OPS_PORT: "0",
  LOG_LEVEL: "info",
  FAILPOINTS: failpoints,
});

/** A chat turn (the plain path: no read before the model is asked), followed. */
const startTurn = () => publishShipmentRun(bus, { source: "chat" });

/** The `run-finished` events among a run's events. */
const ended = (events: RunEvent[]) => events.filter((event) => event.type === "run-finished");

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Starts a worker without failpoints, lets it take the run over, and returns the one `run-finished`
 * its client heard (a second one within half a second fails the test).
 */
async function finishedOnSuccessor(events: RunEvent[]): Promise<RunEvent> {
  const successor = await startServiceProcess("orchestrator", workerEnv(""));
  try {
    await until(() => ended(events).length > 0, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(ended(events)).toHaveLength(1);
    return ended(events)[0]!;
  } finally {
    await successor.stop("SIGTERM");
  }
}

describe("exactly once", () => {
  it("announces a run killed after its end was journaled from the journal, calling nothing again", async () => {
    const doomed = await startServiceProcess("orchestrator", workerEnv("after-final-write"));
    processes.push(doomed);
    const shippedBefore = hook.calls.length;
    const { runId, events } = await startTurn();
    // the worker dies between its final write and telling anyone
    await until(() => doomed.child.exitCode !== null || doomed.child.signalCode !== null, 30_000);
    expect(doomed.child.signalCode).toBe("SIGKILL");
    const callsAtKill = fake.chatRequests().length;
    expect(ended(events)).toHaveLength(0);
    const row = await db.query("SELECT status, steps FROM runs WHERE id = $1", [runId]);
    expect(row.rows[0]).toEqual({ status: "completed", steps: 2 });

    const done = await finishedOnSuccessor(events);
    expect(done.type === "run-finished" && done.status).toBe("completed");
    expect(done.type === "run-finished" && done.output?.content).toBe('done: {"shipped":true}');
    // the run was finished from the journal: no model call after the crash, one shipment
    expect(fake.chatRequests().length).toBe(callsAtKill);
    expect(hook.calls.length - shippedBefore).toBe(1);
  }, 90_000);

  it("makes a tool step again after a crash between its effect and its record without a second effect", async () => {
    const doomed = await startServiceProcess("orchestrator", workerEnv("after-step-effects"));
    processes.push(doomed);
    const shippedBefore = hook.calls.length;
    const callsBefore = fake.chatRequests().length;
    const { runId, events } = await startTurn();
    await until(() => doomed.child.signalCode !== null, 30_000);
    // the shipment happened; the step that made it is not journaled
    expect(hook.calls.length - shippedBefore).toBe(1);
    const steps = await db.query("SELECT count(*)::int AS n FROM run_steps WHERE run_id = $1", [runId]);
    expect(steps.rows[0]).toEqual({ n: 0 });

    // the model proxy that answered is replaced too: nothing remembers the first answer, so the
    // step's model call reaches the model again and comes back with other call ids
    await proxy.stop("SIGTERM");
    proxy = await startProxy();
    const callsAtKill = fake.chatRequests().length;
    const done = await finishedOnSuccessor(events);
    expect(done.type === "run-finished" && done.status).toBe("completed");
    // the tool step's model call was made again (no Redis: no idempotency record), answering
    // with other call ids; the shipment keyed by run, step and call position did not repeat
    expect(fake.chatRequests().length - callsAtKill).toBeGreaterThanOrEqual(2);
    expect(fake.chatRequests().length - callsBefore).toBeGreaterThanOrEqual(3);
    expect(hook.calls.length - shippedBefore).toBe(1);
    const row = await db.query("SELECT status, steps FROM runs WHERE id = $1", [runId]);
    expect(row.rows[0]).toEqual({ status: "completed", steps: 2 });
  }, 90_000);
});
