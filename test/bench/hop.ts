/**
 * One hop's cost: sequential request/reply between two processes over the local NATS, with the
 * same payload (a model.chat request of a plain turn), three ways:
 * - `raw`: core NATS request/reply, JSON encoded and parsed, nothing else;
 * - `rawHeaders`: the same with the headers a bus request carries (trace context, deadline,
 *   keep-alive);
 * - `bus`: the bus's typed request/serve (zod on both sides, keep-alives, spans, in-flight bound).
 * The serving process runs this file with `HOP_BENCH_SERVER=1`. Prints p50/p99 per way and writes
 * test/bench/results/hop.json: the gap between `raw` and `bus` is what the bus adds per hop.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createTestBus } from "@agent-runtime/bus/testing";
import { Endpoints, ModelChatReply, type ModelChatRequest } from "@agent-runtime/contracts";
import { headers } from "@nats-io/nats-core";
import { type LatencySummary, summarize, writeResult } from "./stats.js";

const ROUNDS = Number(process.env.HOP_ROUNDS ?? 3000);
const WARMUP = 300;

const request = (): ModelChatRequest => ({
  meta: {
    v: 1,
    tenant: "bench",
    requestId: `req-${Math.random()}`,
    runId: "run-hop",
    priority: "interactive",
    deadline: Date.now() + 30_000,
  },
  messages: [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "What is the capital of France?" },
  ],
  tier: "fast",
});

const reply: ModelChatReply = ModelChatReply.parse({
  message: { role: "assistant", content: "Paris." },
  model: "fake-fast",
  provider: "fake",
  usage: { promptTokens: 20, completionTokens: 2, totalTokens: 22, cachedTokens: 0 },
  costUsd: 0.00001,
  latencyMs: 1.2,
  cached: false,
  retries: 0,
  fallbacks: 0,
  finishReason: "stop",
  route: { tier: "fast", reason: "default" },
});

async function server(prefix: string): Promise<void> {
  const bus = await createTestBus({ prefix });
  bus.nc.subscribe(`${prefix}.hop.raw`, {
    callback: (_error, msg) => {
      JSON.parse(new TextDecoder().decode(msg.data));
      msg.respond(JSON.stringify({ ok: true, data: reply }));
    },
  });
  bus.serve(Endpoints.modelChat, async () => reply, { queue: "hop", maxInFlight: 64 });
  await bus.nc.flush();
  console.log("ready");
  await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()));
  await bus.close();
  process.exit(0);
}

async function client(): Promise<void> {
  const prefix = `hop${process.pid}`;
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", fileURLToPath(import.meta.url)],
    {
      env: { ...process.env, HOP_BENCH_SERVER: "1", HOP_PREFIX: prefix },
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  await new Promise<void>((resolve) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line === "ready") resolve();
    });
  });
  const bus = await createTestBus({ prefix });
  const decoder = new TextDecoder();
  const ways: Record<string, () => Promise<unknown>> = {
    raw: async () => {
      const msg = await bus.nc.request(`${prefix}.hop.raw`, JSON.stringify(request()), { timeout: 5000 });
      return JSON.parse(decoder.decode(msg.data));
    },
    rawHeaders: async () => {
      const h = headers();
      h.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
      h.set("x-deadline", String(Date.now() + 30_000));
      h.set("x-keepalive", "1000");
      const msg = await bus.nc.request(`${prefix}.hop.raw`, JSON.stringify(request()), {
        timeout: 5000,
        headers: h,
      });
      return JSON.parse(decoder.decode(msg.data));
    },
    bus: () => bus.request(Endpoints.modelChat, request()),
  };
  const figures: Record<string, LatencySummary> = {};
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(ways).map((way) => [way, []]));
  for (let index = 0; index < WARMUP; index++) for (const way of Object.values(ways)) await way();
  // interleaved, so a noisy moment touches every way alike
  for (let index = 0; index < ROUNDS; index++) {
    for (const [name, way] of Object.entries(ways)) {
      const started = performance.now();
      await way();
      samples[name]!.push(performance.now() - started);
    }
  }
  for (const [name, values] of Object.entries(samples)) {
    figures[name] = summarize(values);
    console.log(
      `${name.padEnd(11)} p50 ${figures[name]!.p50.toFixed(3)} ms  p99 ${figures[name]!.p99.toFixed(3)} ms`,
    );
  }
  const busOverRaw = Math.round((figures.bus!.p50 - figures.raw!.p50) * 1000) / 1000;
  console.log(`the bus adds ${busOverRaw} ms per round trip at p50`);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.stdin!.write("stop\n");
  await bus.close();
  await exited;
  writeResult("hop", { rounds: ROUNDS, ...figures, busOverRawP50Ms: busOverRaw });
}

if (process.env.HOP_BENCH_SERVER) await server(process.env.HOP_PREFIX!);
else await client();
