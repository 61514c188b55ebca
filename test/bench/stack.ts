/**
 * Whole-stack chat-turn benchmark: the five services as separate processes
 * against the fake model at zero latency. Prints and writes
 * test/bench/results/stack.json.
 */
import { pathToFileURL } from "node:url";
import { startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import { dropIsolation, isolatedEnv, newIsolation } from "../support/isolation.js";
import { freePort, startServiceProcess } from "../support/processes.js";
import { runConcurrent, summarize, writeResult } from "./stats.js";

const KEY = "sk-bench-stack-key";

export async function run(options: { samples?: number; throughputTurns?: number } = {}) {
  const samples = options.samples ?? Number(process.env.BENCH_SAMPLES ?? 300);
  const throughputTurns = options.throughputTurns ?? Number(process.env.BENCH_TURNS ?? 1500);
  const fake = await startFakeOpenAI();
  fake.setHandler((body) => {
    const wantsTool = body.messages.some(
      (message) => message.role === "user" && String(message.content).includes("calc"),
    );
    const hasResult = body.messages.some((message) => message.role === "tool");
    if (wantsTool && !hasResult)
      return { toolCalls: [{ name: "calculator", arguments: { expression: "6*7" } }] };
    return { content: "ok" };
  });
  const isolation = newIsolation("bench");
  const port = await freePort();
  const env: NodeJS.ProcessEnv = isolatedEnv(isolation, {
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    BOOTSTRAP_API_KEY: KEY,
    OPENAI_BASE_URL: fake.url,
    OPENAI_API_KEY: "sk-fake",
    MODEL_FAST: "fake-fast",
    MODEL_STRONG: "fake-strong",
  });
  const services = [];
  for (const name of ["memory", "tool-executor", "model-proxy", "orchestrator", "ingress"]) {
    services.push(await startServiceProcess(name, { ...env, LOG_LEVEL: "info" }));
  }
  try {
    const direct = new OpenAI({ baseURL: fake.url, apiKey: "sk-fake", maxRetries: 0 });
    const client = new OpenAI({
      baseURL: `http://127.0.0.1:${port}/v1`,
      apiKey: KEY,
      maxRetries: 0,
      timeout: 60_000,
    });
    const ask = (content: string) =>
      client.chat.completions.create({ model: "assistant", messages: [{ role: "user", content }] });

    // warm-up: JIT, pools, caches of tool specs
    for (let i = 0; i < 30; i++) {
      await ask(`warm ${i}`);
      await ask(`calc warm ${i}`);
      await direct.chat.completions.create({
        model: "fake-fast",
        messages: [{ role: "user", content: "warm" }],
      });
    }
    const directRun = await runConcurrent(samples, 1, () =>
      direct.chat.completions.create({ model: "fake-fast", messages: [{ role: "user", content: "hello" }] }),
    );
    const noTool = await runConcurrent(samples, 1, (index) => ask(`hello ${index}`));
    const oneTool = await runConcurrent(samples, 1, (index) => ask(`calc ${index}`));
    const loaded = await runConcurrent(throughputTurns, 32, (index) => ask(`load ${index}`));

    const figures = {
      samples,
      directModelCall: summarize(directRun.latencies),
      chatTurnNoTool: summarize(noTool.latencies),
      chatTurnOneTool: summarize(oneTool.latencies),
      concurrency32: {
        turns: throughputTurns,
        errors: loaded.errors,
        turnsPerSecond: Math.round((loaded.latencies.length / loaded.wallMs) * 1000 * 10) / 10,
        latency: summarize(loaded.latencies),
      },
      overheadOverDirectMs: {
        p50NoTool:
          Math.round((summarize(noTool.latencies).p50 - summarize(directRun.latencies).p50) * 100) / 100,
        p99NoTool:
          Math.round((summarize(noTool.latencies).p99 - summarize(directRun.latencies).p99) * 100) / 100,
      },
      errors: directRun.errors + noTool.errors + oneTool.errors,
    };
    const path = writeResult("stack", figures);
    console.log(JSON.stringify(figures, null, 2));
    console.log(`wrote ${path}`);
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
