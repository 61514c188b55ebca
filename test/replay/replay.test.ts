import { expect, it } from "vitest";
import { generate } from "./generate.js";
import { replayOnce } from "./replay.js";
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
