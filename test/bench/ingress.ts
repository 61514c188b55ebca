/**
 * ingress benchmark with autocannon on loopback, `POST /v1/chat/completions`:
 *  1. ingress alone: the ingress process in front of an echo driver that answers each
 *     RunRequest from the RUNS stream at once (what ingress itself costs per request:
 *     auth, limits in Redis, queue-depth sampling, JetStream publish, event subscription);
 *  2. the full stack (five service processes) with the fake model at zero latency;
 *  3. twice the measured full-stack rate against a bounded interactive queue: the share
 *     shed with 429 and the latency of what was served.
 * Figures: requests per second, p50/p90/p99 (ms) of 200 answers.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { consume } from "@agent-runtime/bus";
import { cleanupTestBus, createTestBus } from "@agent-runtime/bus/testing";
import { RunEvent, RunRequest, Subjects } from "@agent-runtime/contracts";
import { startFakeOpenAI } from "@agent-runtime/testkit";
import autocannon from "autocannon";
import { stringify } from "yaml";
import { dropIsolation, isolatedEnv, newIsolation } from "../support/isolation.js";
import { freePort, type ServiceProcess, startServiceProcess } from "../support/processes.js";
import { summarize, writeResult } from "./stats.js";

const KEY = "sk-bench-ingress";

function load(url: string, options: { connections: number; durationSeconds: number; overallRate?: number }) {
  const latencies = new Map<number, number[]>();
  let finish: (value: autocannon.Result) => void = () => undefined;
  let fail: (error: unknown) => void = () => undefined;
  const instance = autocannon(
    {
      url: `${url}/v1/chat/completions`,
      method: "POST",
      connections: options.connections,
      duration: options.durationSeconds,
      ...(options.overallRate ? { overallRate: options.overallRate } : {}),
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "assistant", messages: [{ role: "user", content: "hello there" }] }),
    },
    (error, result) => (error ? fail(error) : finish(result)),
  );
  instance.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    const list = latencies.get(statusCode) ?? [];
    list.push(responseTime);
    latencies.set(statusCode, list);
  });
  return new Promise<{ result: autocannon.Result; latencies: Map<number, number[]> }>((resolve, reject) => {
    finish = (result) => resolve({ result, latencies });
    fail = reject;
  });
}

const count = (latencies: Map<number, number[]>, status: number) => latencies.get(status)?.length ?? 0;
const all = (latencies: Map<number, number[]>) =>
  [...latencies.values()].reduce((sum, list) => sum + list.length, 0);
const others = (latencies: Map<number, number[]>) =>
  Object.fromEntries(
    [...latencies]
      .filter(([status]) => status !== 200 && status !== 429)
      .map(([status, list]) => [status, list.length]),
  );

function configFile(config: object): string {
  const path = join(mkdtempSync(join(tmpdir(), "benching-")), "config.yaml");
  writeFileSync(path, stringify(config));
  return path;
}

/** Ingress process + an echo driver in this process standing in for the orchestrator. */
async function ingressAlone(duration: number) {
  const isolation = newIsolation("benchingalone");
  const port = await freePort();
  const env = isolatedEnv(isolation, {
    PORT: String(port),
    HOST: "127.0.0.1",
    BOOTSTRAP_API_KEY: KEY,
    // a tenant rate limit and concurrent-run limit high enough never to trip, so their Redis work is measured
    AGENT_CONFIG: configFile({
      limits: { defaults: { requestsPerMinute: 10_000_000, concurrentRuns: 100_000 } },
    }),
  });
  const ingress = await startServiceProcess("ingress", env);
  const bus = await createTestBus({ prefix: isolation.natsPrefix, name: "bench-driver" });
  const driver = await consume(bus, {
    stream: "RUNS",
    durable: "orchestrator-interactive",
    filterSubject: Subjects.runsInteractiveAll,
    schema: RunRequest,
    concurrency: 256,
    deadLetterOrigin: "bench",
    handler: async (request) => {
      const base = { runId: request.runId, ts: Date.now() };
      bus.publish(Subjects.runEvents(request.runId), RunEvent, {
        ...base,
        seq: 0,
        type: "run-finished",
        status: "completed",
        output: { role: "assistant", content: "hi" },
        finishReason: "stop",
        usage: { promptTokens: 3, completionTokens: 1, cachedTokens: 0, totalTokens: 4 },
        costUsd: 0,
        steps: 1,
      });
    },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await load(url, { connections: 8, durationSeconds: 2 }); // warm-up
    const measured = await load(url, { connections: 32, durationSeconds: duration });
    return {
      requestsPerSecond: Math.round(count(measured.latencies, 200) / duration),
      ok: count(measured.latencies, 200),
      otherStatuses: others(measured.latencies),
      latency: summarize(measured.latencies.get(200) ?? []),
    };
  } finally {
    await driver.stop();
    await ingress.stop();
    await cleanupTestBus(bus);
    await dropIsolation(isolation).catch(() => undefined);
  }
}

/** All five services as processes with the fake model at zero latency. */
async function fullStack(duration: number) {
  const fake = await startFakeOpenAI();
  fake.setHandler(() => ({ content: "hi" }));
  const isolation = newIsolation("benching");
  const port = await freePort();
  const env = isolatedEnv(isolation, {
    PORT: String(port),
    HOST: "127.0.0.1",
    BOOTSTRAP_API_KEY: KEY,
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "k",
    AGENT_CONFIG: configFile({ limits: { queues: { interactiveMaxDepth: 48 } } }),
  });
  const services: ServiceProcess[] = [];
  for (const name of ["memory", "tool-executor", "model-proxy", "orchestrator", "ingress"])
    services.push(await startServiceProcess(name, env));
  const url = `http://127.0.0.1:${port}`;
  try {
    await load(url, { connections: 8, durationSeconds: 3 }); // warm-up
    const base = await load(url, { connections: 32, durationSeconds: duration });
    const rate = Math.round(count(base.latencies, 200) / duration);
    const over = await load(url, { connections: 256, durationSeconds: duration, overallRate: rate * 2 });
    return {
      concurrency32: {
        requestsPerSecond: rate,
        ok: count(base.latencies, 200),
        otherStatuses: others(base.latencies),
        latency: summarize(base.latencies.get(200) ?? []),
      },
      twiceThatLoad: {
        offeredRequestsPerSecond: rate * 2,
        servedPerSecond: Math.round(count(over.latencies, 200) / duration),
        shedWith429Share:
          Math.round((count(over.latencies, 429) / Math.max(1, all(over.latencies))) * 1000) / 1000,
        otherStatuses: others(over.latencies),
        servedLatency: summarize(over.latencies.get(200) ?? []),
        shedLatency: summarize(over.latencies.get(429) ?? []),
        errors: over.result.errors,
        timeouts: over.result.timeouts,
      },
    };
  } finally {
    for (const service of services.reverse()) await service.stop();
    await fake.close();
    await dropIsolation(isolation).catch(() => undefined);
  }
}

export async function run() {
  const duration = Number(process.env.BENCH_SECONDS ?? 10);
  const alone = await ingressAlone(duration);
  const stack = await fullStack(duration);
  const figures = { ingressAloneConcurrency32: alone, ...stack };
  console.log(JSON.stringify(figures, null, 2));
  console.log(`wrote ${writeResult("ingress", figures)}`);
  return figures;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run();
  process.exit(0);
}
