/**
 * tool-executor benchmark: overhead of a call through the executor over the
 * handler called directly, calls per second, and a parallel batch of 8 slow
 * calls against their sequential time.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createTestBus } from "@agent-runtime/bus/testing";
import { Endpoints, toolExecEndpoint } from "@agent-runtime/contracts";
import { evaluate } from "@agent-runtime/tool-executor";
import { stringify } from "yaml";
import { dropIsolation, isolatedEnv, newIsolation } from "../support/isolation.js";
import { startServiceProcess } from "../support/processes.js";
import { runConcurrent, summarize, writeResult } from "./stats.js";

export async function run() {
  const samples = Number(process.env.BENCH_SAMPLES ?? 1000);
  const slow = createServer((request, response) => {
    request.resume();
    setTimeout(() => response.end('{"ok":true}'), 200);
  });
  await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
  const isolation = newIsolation("benchte");
  const configPath = join(mkdtempSync(join(tmpdir(), "benchte-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      tools: {
        webhooks: {
          slow: {
            description: "200 ms",
            url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`,
            method: "GET",
            sideEffects: false,
            allowPrivateNetwork: true,
          },
        },
      },
    }),
  );
  const executor = await startServiceProcess(
    "tool-executor",
    isolatedEnv(isolation, {
      AGENT_CONFIG: configPath,
    }),
  );
  const bus = await createTestBus({ prefix: isolation.natsPrefix });
  let counter = 0;
  const meta = () => ({
    v: 1 as const,
    tenant: "bench",
    requestId: `t-${counter++}`,
    deadline: Date.now() + 10_000,
  });
  // distinct expressions so the result cache does not answer
  const viaExecutor = () =>
    bus.request(toolExecEndpoint("calculator"), {
      meta: meta(),
      callId: `c${counter}`,
      arguments: { expression: `${counter} * 3 + 1` },
    });
  try {
    for (let i = 0; i < 200; i++) await viaExecutor();
    const directLatencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      const started = performance.now();
      evaluate(`${i} * 3 + 1`);
      directLatencies.push(performance.now() - started);
    }
    const sequential1 = await runConcurrent(samples, 1, viaExecutor);
    const loaded = await runConcurrent(samples * 3, 64, viaExecutor);
    const batchCalls = Array.from({ length: 8 }, (_, index) => ({
      callId: `s${index}`,
      name: "slow",
      arguments: { n: index },
    }));
    const batchTimes: number[] = [];
    const sequentialTimes: number[] = [];
    for (let round = 0; round < 5; round++) {
      const calls = batchCalls.map((call) => ({ ...call, arguments: { n: `${round}-${call.callId}` } }));
      let started = performance.now();
      await bus.request(Endpoints.toolBatch, { meta: meta(), calls });
      batchTimes.push(performance.now() - started);
      started = performance.now();
      for (const call of calls) {
        await bus.request(toolExecEndpoint("slow"), {
          meta: meta(),
          callId: call.callId,
          arguments: { n: `${call.arguments.n}-seq` },
        });
      }
      sequentialTimes.push(performance.now() - started);
    }
    const direct = summarize(directLatencies);
    const through = summarize(sequential1.latencies);
    const figures = {
      directHandler: direct,
      throughExecutor: through,
      overheadP50Ms: Math.round((through.p50 - direct.p50) * 1000) / 1000,
      overheadP99Ms: Math.round((through.p99 - direct.p99) * 1000) / 1000,
      callsPerSecondConcurrency64: Math.round((loaded.latencies.length / loaded.wallMs) * 1000),
      concurrency64: summarize(loaded.latencies),
      batchOf8SlowCalls: {
        parallel: summarize(batchTimes),
        sequential: summarize(sequentialTimes),
        speedup: Math.round((summarize(sequentialTimes).p50 / summarize(batchTimes).p50) * 100) / 100,
      },
      errors: sequential1.errors + loaded.errors,
    };
    console.log(JSON.stringify(figures, null, 2));
    console.log(`wrote ${writeResult("tool-executor", figures)}`);
    return figures;
  } finally {
    await bus.close();
    await executor.stop();
    slow.close();
    await dropIsolation(isolation).catch(() => undefined);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await run();
  process.exit(0);
}
