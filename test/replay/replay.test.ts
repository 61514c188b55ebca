import { expect, it } from "vitest";
import { generate } from "./generate.js";
import { type RunOutcome, replayOnce } from "./replay.js";
import { batchLatency, medianRound } from "./run.js";
import { configured, naive } from "./settings.js";
import { loadWorkload } from "./workload.js";

it("the checked-in workload is the seeded generator's output", () => {
  const workload = loadWorkload();
  expect(generate(workload.seed)).toEqual(workload);
  expect(workload.tasks.length).toBeGreaterThanOrEqual(300);
  expect(workload.users).toBeGreaterThanOrEqual(40);
  expect(new Set(workload.tasks.map((task) => task.tenant)).size).toBe(3);
});

it("a smoke replay: configured answers every task naive does, for far less", async () => {
  const workload = loadWorkload();
  const naiveRun = await replayOnce(workload, naive(), { limit: 2 });
  const configuredRun = await replayOnce(workload, configured(), { limit: 2 });
  expect(naiveRun.wrong).toEqual([]);
  expect(configuredRun.wrong).toEqual([]);
  expect(configuredRun.correct).toBe(naiveRun.correct);
  expect(configuredRun.webhook.exactlyOnce).toBe(true);
  expect(configuredRun.usd).toBeLessThan(naiveRun.usd * 0.5);
});

it("batch latency compares the turns beside the batch work with the same turns run without it", () => {
  const outcome = (taskLatencyMs: Record<string, number>, duringBatch: string[]) =>
    ({
      taskLatencyMs,
      duringBatch,
      latencyMs: { batchP50: 300, batchP99: 900, batchWindowSeconds: 4 },
    }) as unknown as RunOutcome;
  const withBatch = outcome({ a: 100, b: 600, c: 5000 }, ["a", "b"]);
  // c ran outside the window and does not count; a task missing from the other run neither
  expect(batchLatency(withBatch, outcome({ a: 100, b: 400, c: 100 }, []))).toMatchObject({
    interactiveTasks: 2,
    interactiveP99DuringBatchMs: 600,
    interactiveP99WithoutBatchMs: 400,
    ratio: 1.5,
    met: false,
    batchP99Ms: 900,
  });
  expect(batchLatency(withBatch, outcome({ a: 100, b: 550 }, [])).met).toBe(true);
  expect(batchLatency(outcome({}, []), outcome({}, [])).met).toBe(false);
});

it("the batch latency of several rounds is the round with the median ratio, every round kept", () => {
  const round = (ratio: number, tasks: number) =>
    ({ ratio, interactiveTasks: tasks, met: ratio <= 1.2 }) as ReturnType<typeof batchLatency>;
  const rounds = [round(1.46, 67), round(0.97, 70), round(1.1, 64)];
  expect(medianRound(rounds)).toMatchObject({ ratio: 1.1, interactiveTasks: 64, met: true, rounds });
  expect(medianRound([round(1.3, 1), round(1.0, 2)]).ratio).toBe(1.0);
  expect(medianRound([round(1.3, 5)]).met).toBe(false);
  expect(() => medianRound([])).toThrow(/no batch latency round/);
});
