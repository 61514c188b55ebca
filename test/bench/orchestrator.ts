/**
 * orchestrator benchmark (services as processes, fake model at zero latency):
 * runs per second with one and three tool steps, interactive latency under a
 * batch flood, and the time to resume a run after its worker is killed.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Bus } from "@agent-runtime/bus";
import { createTestBus } from "@agent-runtime/bus/testing";
import { RunEvent, RunRequest, Subjects } from "@agent-runtime/contracts";
import { startFakeOpenAI } from "@agent-runtime/testkit";
import { stringify } from "yaml";
import { dropIsolation, isolatedEnv, newIsolation } from "../support/isolation.js";
import { type ServiceProcess, startServiceProcess } from "../support/processes.js";
import { runConcurrent, summarize, writeResult } from "./stats.js";

function runner(bus: Bus) {
  return async (agent: string, content: string, priority: "interactive" | "batch" = "interactive") => {
    const runId = `run_${randomUUID()}`;
    const finished = new Promise<RunEvent>((resolve) => {
      const subscription = bus.subscribe(Subjects.runEvents(runId), RunEvent, (event) => {
        if (event.type === "run-finished") {
          subscription.unsubscribe();
          resolve(event);
        }
      });
    });
    await bus.publishDurable(
      Subjects.runs(priority, "bench"),
      RunRequest,
      {
        runId,
        tenant: "bench",
        agent,
        input: [{ role: "user", content }],
        priority,
        createdAt: Date.now(),
        deadline: Date.now() + 600_000,
        source: "runs",
      },
      { msgId: runId },
    );
    const event = await finished;
    if (event.type !== "run-finished" || event.status !== "completed")
      throw new Error(`run ${runId} ended ${event.type === "run-finished" ? event.status : "?"}`);
    return event;
  };
}

export async function run() {
  const total = Number(process.env.BENCH_RUNS ?? 300);
  const fake = await startFakeOpenAI();
  fake.setHandler((body) => {
    const slowTool = body.tools?.some((tool) => tool.function.name === "slowact");
    if (slowTool)
      return body.messages.some((message) => message.role === "tool")
        ? { content: "acted" }
        : { toolCalls: [{ name: "slowact", arguments: {} }] };
    const wanted = Number(
      String(body.messages.find((message) => message.role === "user")?.content).match(/steps=(\d+)/)?.[1] ??
        0,
    );
    const done = body.messages.filter((message) => message.role === "tool").length;
    if (done < wanted) return { toolCalls: [{ name: "calculator", arguments: { expression: `${done}+1` } }] };
    return { content: "done" };
  });
  const hook = createServer((request, response) => {
    request.resume();
    setTimeout(() => response.end('{"ok":true}'), 3000);
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  const isolation = newIsolation("benchorch");
  const configPath = join(mkdtempSync(join(tmpdir(), "benchorch-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      tools: {
        webhooks: {
          slowact: {
            description: "slow side effect",
            url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/`,
            sideEffects: true,
            allowPrivateNetwork: true,
          },
        },
      },
      agents: { bench: { tools: ["calculator"], maxSteps: 8 }, slow: { tools: ["slowact"] } },
    }),
  );
  const env = isolatedEnv(isolation, {
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "k",
    AGENT_CONFIG: configPath,
  });
  const services: ServiceProcess[] = [];
  for (const name of ["memory", "tool-executor", "model-proxy", "orchestrator"])
    services.push(await startServiceProcess(name, env));
  const bus = await createTestBus({ prefix: isolation.natsPrefix });
  const start = runner(bus);
  try {
    for (let i = 0; i < 30; i++) await start("bench", "steps=1 warm");
    const one = await runConcurrent(total, 32, (index) => start("bench", `steps=1 run ${index}`));
    const three = await runConcurrent(total, 32, (index) => start("bench", `steps=3 run ${index}`));
    const calm = await runConcurrent(60, 1, (index) => start("bench", `steps=1 calm ${index}`));
    const flood = Array.from({ length: 400 }, (_, index) =>
      start("bench", `steps=1 flood ${index}`, "batch").catch(() => undefined),
    );
    const underFlood = await runConcurrent(60, 1, (index) => start("bench", `steps=1 urgent ${index}`));
    await Promise.all(flood);

    // the only worker takes a run that waits on a slow tool; a second worker joins; the first is killed
    const first = services[3]!;
    const resumed = start("slow", "act slowly");
    await new Promise((resolve) => setTimeout(resolve, 200));
    services.push(await startServiceProcess("orchestrator", env));
    const killedAt = performance.now();
    await first.stop("SIGKILL");
    await resumed;
    const resumeMs = performance.now() - killedAt;

    // SIGTERM instead: the draining worker lets the slow tool step finish, records it and hands
    // the run off at once (a nak, not the ack wait); a third worker answers
    const draining = services.at(-1)!;
    const handedOff = start("slow", "act slowly again");
    await new Promise((resolve) => setTimeout(resolve, 200));
    services.push(await startServiceProcess("orchestrator", env));
    const terminatedAt = performance.now();
    const drained = draining.stop("SIGTERM");
    await handedOff;
    const handoffMs = performance.now() - terminatedAt;
    await drained;

    const figures = {
      runsPerSecond: {
        oneToolStep: Math.round((one.latencies.length / one.wallMs) * 10000) / 10,
        threeToolSteps: Math.round((three.latencies.length / three.wallMs) * 10000) / 10,
      },
      latencyConcurrency32: {
        oneToolStep: summarize(one.latencies),
        threeToolSteps: summarize(three.latencies),
      },
      interactive: { calm: summarize(calm.latencies), underBatchFloodOf400: summarize(underFlood.latencies) },
      resumeAfterKillMs: Math.round(resumeMs),
      resumeNote:
        "from SIGKILL (during a 3 s side-effecting tool call) to the run's answer on the second worker: the 5 s ack wait (RUN_ACK_WAIT_MS) before redelivery dominates",
      handoffAfterSigtermMs: Math.round(handoffMs),
      handoffNote:
        "from SIGTERM (during a 3 s tool call) to the answer from another worker: the step in flight finishes on the draining worker, which hands the run off at once",
      errors: one.errors + three.errors + calm.errors + underFlood.errors,
    };
    console.log(JSON.stringify(figures, null, 2));
    console.log(`wrote ${writeResult("orchestrator", figures)}`);
    return figures;
  } finally {
    await bus.close();
    for (const service of services.reverse()) await service.stop();
    await fake.close();
    hook.close();
    await dropIsolation(isolation).catch(() => undefined);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run();
  process.exit(0);
}
