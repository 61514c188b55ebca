/**
 * model-proxy benchmark: added latency over a direct call to the fake provider
 * (concurrency 1 and 64), requests per second of one proxy process, cache-hit
 * latency, and time to fail over when a provider dies.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createTestBus } from "@agent-runtime/bus/testing";
import { Endpoints } from "@agent-runtime/contracts";
import { startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import { stringify } from "yaml";
import { dropIsolation, NATS_URL, newIsolation, REDIS_URL } from "../support/isolation.js";
import { startServiceProcess } from "../support/processes.js";
import { runConcurrent, summarize, writeResult } from "./stats.js";

export async function run() {
  const samples = Number(process.env.BENCH_SAMPLES ?? 400);
  const primary = await startFakeOpenAI();
  const backup = await startFakeOpenAI();
  const isolation = newIsolation("benchmp");
  const configPath = join(mkdtempSync(join(tmpdir(), "benchmp-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      providers: {
        primary: { baseUrl: primary.url, apiKey: "k", timeoutMs: 2000 },
        backup: { baseUrl: backup.url, apiKey: "k" },
      },
      models: { "model-a": { provider: "primary" }, "model-b": { provider: "backup" } },
      tiers: { fast: ["model-a", "model-b"] },
    }),
  );
  const proxy = await startServiceProcess("model-proxy", {
    NATS_URL,
    REDIS_URL,
    NATS_PREFIX: isolation.natsPrefix,
    REDIS_PREFIX: isolation.redisPrefix,
    OPS_PORT: "0",
    AGENT_CONFIG: configPath,
    RETRY_BASE_MS: "50",
    BREAKER_FAILURES: "3",
    LOG_LEVEL: "info",
  });
  const bus = await createTestBus({ prefix: isolation.natsPrefix });
  const direct = new OpenAI({ baseURL: primary.url, apiKey: "k", maxRetries: 0 });
  let counter = 0;
  const viaProxy = (extra: Record<string, unknown> = {}) =>
    bus.request(Endpoints.modelChat, {
      meta: { v: 1, tenant: "bench", requestId: `b-${counter++}`, deadline: Date.now() + 10_000 },
      messages: [{ role: "user", content: `hello ${counter}` }],
      tier: "fast",
      ...extra,
    });
  const directCall = () =>
    direct.chat.completions.create({ model: "model-a", messages: [{ role: "user", content: "hello" }] });
  try {
    for (let i = 0; i < 100; i++) {
      await viaProxy();
      await directCall();
    }
    const direct1 = await runConcurrent(samples, 1, directCall);
    const proxy1 = await runConcurrent(samples, 1, () => viaProxy());
    const direct64 = await runConcurrent(samples * 5, 64, directCall);
    const proxy64 = await runConcurrent(samples * 5, 64, () => viaProxy());
    await viaProxy({ temperature: 0, messages: [{ role: "user", content: "cached question" }] });
    const cacheHits = await runConcurrent(samples, 1, () =>
      viaProxy({ temperature: 0, messages: [{ role: "user", content: "cached question" }] }),
    );

    // the primary dies (connection refused); the first call fails over, later ones skip it (breaker open)
    await primary.close();
    const failover: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      await viaProxy();
      failover.push(performance.now() - started);
    }
    const s = {
      direct1: summarize(direct1.latencies),
      proxy1: summarize(proxy1.latencies),
      direct64: summarize(direct64.latencies),
      proxy64: summarize(proxy64.latencies),
    };
    const figures = {
      concurrency1: {
        direct: s.direct1,
        proxied: s.proxy1,
        addedP50Ms: round(s.proxy1.p50 - s.direct1.p50),
        addedP99Ms: round(s.proxy1.p99 - s.direct1.p99),
      },
      concurrency64: {
        direct: s.direct64,
        proxied: s.proxy64,
        addedP50Ms: round(s.proxy64.p50 - s.direct64.p50),
        addedP99Ms: round(s.proxy64.p99 - s.direct64.p99),
      },
      requestsPerSecondOneProcess: round((proxy64.latencies.length / proxy64.wallMs) * 1000),
      cacheHit: summarize(cacheHits.latencies),
      failover: {
        firstCallAfterDeathMs: round(failover[0]!),
        laterCallsWithBreakerOpen: summarize(failover.slice(3)),
      },
      errors: direct1.errors + proxy1.errors + direct64.errors + proxy64.errors + cacheHits.errors,
    };
    console.log(JSON.stringify(figures, null, 2));
    console.log(`wrote ${writeResult("model-proxy", figures)}`);
    return figures;
  } finally {
    await bus.close();
    await proxy.stop();
    await backup.close();
    await dropIsolation(isolation).catch(() => undefined);
  }
}

const round = (value: number) => Math.round(value * 100) / 100;

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run();
  process.exit(0);
}
