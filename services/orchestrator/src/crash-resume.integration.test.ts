/**
 * Crash-resume with real worker processes: a worker is killed with SIGKILL in the middle of a run
 * and a second worker process finishes it without repeating finished model calls or side effects.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, runtimeConfig, startHarness, until } from "./test-support/harness.js";

const serviceDir = join(dirname(fileURLToPath(import.meta.url)), "..");

interface Worker {
  child: ChildProcess;
  output(): string;
}

/** `src/main.ts` in its own process, resolved once it logs that it is ready. */
async function startWorker(env: NodeJS.ProcessEnv): Promise<Worker> {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts"], {
    cwd: serviceDir,
    env: { ...process.env, ...env, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-100_000);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const worker = { child, output: () => output };
  await until(() => {
    if (child.exitCode !== null) throw new Error(`worker exited during start-up:\n${output.slice(-2000)}`);
    return output.includes("orchestrator ready");
  }, 30_000);
  return worker;
}

async function kill(worker: Worker): Promise<void> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  const exited = new Promise((resolve) => worker.child.once("exit", resolve));
  worker.child.kill("SIGKILL");
  await exited;
}

let harness: Harness;
let hook: Server;
const shipments: number[] = [];
const workers: Worker[] = [];

beforeAll(async () => {
  hook = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      shipments.push(Date.now());
      // a slow side effect: still in flight when its worker is killed
      setTimeout(() => response.end(JSON.stringify({ shipped: true })), 1200);
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  harness = await startHarness(
    runtimeConfig(
      { shipper: { tools: ["ship", "calculator"], maxSteps: 5 } },
      {
        webhooks: {
          ship: {
            description: "ships an order (side effect)",
            url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/ship`,
            sideEffects: true,
            timeoutMs: 10_000,
            allowPrivateNetwork: true,
          },
        },
      },
    ),
    { RUN_ACK_WAIT_MS: "1000" },
  );
}, 60_000);

afterAll(async () => {
  for (const worker of workers) await kill(worker);
  await harness?.stop();
  hook?.close();
});

describe("crash-resume with worker processes", () => {
  it("finishes on a second worker after SIGKILLs in a tool step and in a model step, acting once", async () => {
    // step 0: a side effect and a calculation in parallel; step 1: a slow model call; step 2: the answer
    harness.fake.setHandler((body) => {
      const results = body.messages.filter((message) => message.role === "tool").length;
      if (results === 0)
        return {
          toolCalls: [
            { id: "call_ship", name: "ship", arguments: { order: 7 } },
            { id: "call_sum", name: "calculator", arguments: { expression: "6*7" } },
          ],
        };
      if (results === 2)
        return {
          toolCalls: [{ id: "call_check", name: "calculator", arguments: { expression: "40+2" } }],
          latencyMs: 1500,
        };
      return { content: `shipped; totals ${results}` };
    });
    const calls = () => harness.fake.chatRequests().length;
    const workerEnv = { ...harness.env, OPS_PORT: "0" };
    workers.push(await startWorker(workerEnv));
    const run = await harness.startRun("shipper", "ship order 7 and check the total");

    // kill 1: while the shipment is in flight
    await until(() => shipments.length === 1, 20_000);
    await kill(workers[0]!);
    workers.push(await startWorker(workerEnv));
    // kill 2: while the second worker waits on the slow model call of step 1
    await until(() => calls() === 2, 20_000);
    await kill(workers[1]!);
    workers.push(await startWorker(workerEnv));

    const { events, finished } = await run.done;
    expect(finished.status).toBe("completed");
    expect(finished.output?.content).toBe("shipped; totals 3");
    expect(finished.steps).toBe(3);
    // the side effect happened once; each model step reached the provider once (the killed call's
    // recorded result was replayed by the model-proxy, keyed by `<runId>:<step>`)
    expect(shipments).toHaveLength(1);
    expect(calls()).toBe(3);
    expect(events.flatMap((event) => (event.type === "run-started" ? [event.attempt] : []))).toEqual([
      1, 2, 3,
    ]);
    const results = events.flatMap((event) => (event.type === "tool-result" ? [event.callId] : []));
    expect(results.filter((id) => id === "call_ship")).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events.filter((event) => event.type === "run-finished")).toHaveLength(1);
    const record = await harness.db.query("SELECT status, attempts, steps FROM runs WHERE id = $1", [
      run.runId,
    ]);
    expect(record.rows[0]).toEqual({ status: "completed", attempts: 3, steps: 3 });
  }, 90_000);
});
