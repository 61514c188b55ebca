import type { Bus } from "@agent-runtime/bus";
import { createTestBus } from "@agent-runtime/bus/testing";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServiceProcess, startServiceProcess } from "../support/processes.js";
import { publishShipmentRun, type ShippingHook, startShippingHook } from "../support/shipping.js";
import { type Stack, startStack } from "../support/stack.js";

let fake: FakeOpenAI;
let stack: Stack;
let bus: Bus;
let hook: ShippingHook;
const workers: ServiceProcess[] = [];

beforeAll(async () => {
  // slow side effect: the worker is killed while this call is in flight
  hook = await startShippingHook({ delayMs: 1500 });
  fake = await startFakeOpenAI();
  fake.setHandler((body) => {
    const result = body.messages.find((message) => message.role === "tool");
    if (!result) return { toolCalls: [{ id: "call_ship", name: "ship", arguments: { order: 7 } }] };
    return { content: `shipped: ${String(result.content)}` };
  });
  stack = await startStack({
    bootstrapApiKey: "sk-crash-tests",
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: hook.configPath },
    without: ["orchestrator"],
  });
  bus = await createTestBus({ prefix: stack.isolation.natsPrefix });
});

afterAll(async () => {
  for (const worker of workers) await worker.stop("SIGKILL");
  await bus?.close();
  await stack?.stop();
  await fake?.close();
  hook?.close();
});

describe("crash-resume", () => {
  it("finishes a run on a second worker after the first is killed mid-run, acting once", async () => {
    const workerEnv = { ...stack.env, RUN_ACK_WAIT_MS: "1000", OPS_PORT: "0", LOG_LEVEL: "info" };
    const first = await startServiceProcess("orchestrator", workerEnv);
    workers.push(first);
    const { events } = await publishShipmentRun(bus, { source: "runs", threadId: true });
    const finished = () => events.filter((event) => event.type === "run-finished");
    const started = () => events.filter((event) => event.type === "run-started");
    // wait until the side effect is in flight, then kill the worker that holds the run
    for (let i = 0; i < 200 && hook.calls.length === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    expect(hook.calls).toHaveLength(1);
    const modelCallsBeforeKill = fake.chatRequests().length;
    const killedAt = Date.now();
    await first.stop("SIGKILL");

    const second = await startServiceProcess("orchestrator", workerEnv);
    workers.push(second);
    for (let i = 0; i < 400 && finished().length === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(finished()).toHaveLength(1);
    const done = finished()[0]!;
    expect(done.type === "run-finished" && done.status).toBe("completed");
    expect(done.type === "run-finished" && done.output?.content).toBe('shipped: {"shipped":true}');
    // the side effect happened once; the recorded first model call was not paid for again
    expect(hook.calls).toHaveLength(1);
    expect(fake.chatRequests().length - modelCallsBeforeKill).toBe(1);
    expect(started().map((event) => event.type === "run-started" && event.attempt)).toEqual([1, 2]);
    console.log(`resumed and finished ${Date.now() - killedAt} ms after the kill`);
  });
});
