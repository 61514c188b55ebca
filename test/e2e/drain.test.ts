/**
 * A deploy: one of two orchestrator processes gets SIGTERM with 30 chat turns in flight, their
 * model calls slower than its drain grace. The draining worker takes no new runs, hands back what
 * it could not finish in its grace, and exits; the other worker finishes every run. No client
 * sees an error.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServiceProcess, startServiceProcess } from "../support/processes.js";
import { type Stack, startStack } from "../support/stack.js";

const KEY = "sk-drain-tests";
let fake: FakeOpenAI;
let stack: Stack;
const workers: ServiceProcess[] = [];

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler(() => ({ content: "finished", latencyMs: 1500 }));
  stack = await startStack({ bootstrapApiKey: KEY, openaiBaseUrl: fake.url, without: ["orchestrator"] });
  const env = {
    ...stack.env,
    OPS_PORT: "0",
    LOG_LEVEL: "info",
    DRAIN_GRACE_MS: "300",
    RUN_ACK_WAIT_MS: "2000",
  };
  workers.push(await startServiceProcess("orchestrator", env));
  workers.push(await startServiceProcess("orchestrator", env));
}, 90_000);

afterAll(async () => {
  for (const worker of workers) await worker.stop("SIGKILL");
  await stack?.stop();
  await fake?.close();
});

describe("drain", () => {
  it("hands back the runs of a worker stopped mid-turn without failing any", async () => {
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 60_000 });
    const turns = Array.from({ length: 30 }, (_, index) =>
      client.chat.completions
        .create({ model: "assistant", messages: [{ role: "user", content: `deploy ${index}` }] })
        .then(
          (completion) => completion.choices[0]?.message.content,
          (error: unknown) => `error: ${String(error)}`,
        ),
    );
    // every turn is in its model call on one of the two workers
    await sleep(700);
    const stopped = workers[0]!;
    const exit = await stopped.stop("SIGTERM");
    expect(exit).toBe(0);
    const answers = await Promise.all(turns);
    expect(answers).toEqual(Array.from({ length: 30 }, () => "finished"));
    // the stopped worker held some of them and gave them back
    expect(stopped.output()).toMatch(/handed off/);
  }, 90_000);
});
