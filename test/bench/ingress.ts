/**
 * ingress benchmark with autocannon on loopback: requests per second and
 * p50/p99 of /v1/chat/completions (fake model at zero latency), then twice
 * that load against a bounded queue: share shed with 429, p99 of what was served.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
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

export async function run() {
  const duration = Number(process.env.BENCH_SECONDS ?? 10);
  const fake = await startFakeOpenAI();
  fake.setHandler(() => ({ content: "hi" }));
  const isolation = newIsolation("benching");
  const port = await freePort();
  const configPath = join(mkdtempSync(join(tmpdir(), "benching-")), "config.yaml");
  writeFileSync(configPath, stringify({ limits: { queues: { interactiveMaxDepth: 48 } } }));
  const env = isolatedEnv(isolation, {
    PORT: String(port),
    HOST: "127.0.0.1",
    BOOTSTRAP_API_KEY: KEY,
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "k",
    AGENT_CONFIG: configPath,
  });
  const services: ServiceProcess[] = [];
  for (const name of ["memory", "tool-executor", "model-proxy", "orchestrator", "ingress"])
    services.push(await startServiceProcess(name, env));
  const url = `http://127.0.0.1:${port}`;
  try {
    await load(url, { connections: 8, durationSeconds: 3 }); // warm-up
    const base = await load(url, { connections: 32, durationSeconds: duration });
    const rate = Math.round(base.result.requests.average);
    const over = await load(url, { connections: 256, durationSeconds: duration, overallRate: rate * 2 });
    const count = (latencies: Map<number, number[]>, status: number) => latencies.get(status)?.length ?? 0;
    const all = (latencies: Map<number, number[]>) =>
      [...latencies.values()].reduce((sum, list) => sum + list.length, 0);
    const figures = {
      concurrency32: {
        requestsPerSecond: rate,
        ok: count(base.latencies, 200),
        non2xx: base.result.non2xx,
        latency: summarize(base.latencies.get(200) ?? []),
      },
      twiceThatLoad: {
        offeredRequestsPerSecond: rate * 2,
        servedPerSecond: Math.round(count(over.latencies, 200) / duration),
        shedWith429Share:
          Math.round((count(over.latencies, 429) / Math.max(1, all(over.latencies))) * 1000) / 1000,
        otherStatuses: Object.fromEntries(
          [...over.latencies]
            .filter(([status]) => status !== 200 && status !== 429)
            .map(([status, list]) => [status, list.length]),
        ),
        servedLatency: summarize(over.latencies.get(200) ?? []),
        errors: over.result.errors,
        timeouts: over.result.timeouts,
      },
    };
    console.log(JSON.stringify(figures, null, 2));
    console.log(`wrote ${writeResult("ingress", figures)}`);
    return figures;
  } finally {
    for (const service of services.reverse()) await service.stop();
    await fake.close();
    await dropIsolation(isolation).catch(() => undefined);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run();
  process.exit(0);
}
