import { describe, expect, it } from "vitest";
import { RunPriority } from "./runs.js";
import { Consumers, Subjects } from "./subjects.js";

/** NATS wildcard match: `*` one token, `>` the rest. */
function matches(pattern: string, subject: string): boolean {
  const wanted = pattern.split(".");
  const tokens = subject.split(".");
  for (const [index, token] of wanted.entries()) {
    if (token === ">") return tokens.length > index;
    if (index >= tokens.length || (token !== "*" && token !== tokens[index])) return false;
  }
  return wanted.length === tokens.length;
}

describe("subjects and consumers", () => {
  it("names one run consumer per lane, the same the constants spell", () => {
    expect(RunPriority.options.map((priority) => Consumers.runs(priority))).toEqual([
      Consumers.runsInteractive,
      Consumers.runsBatch,
    ]);
    const names = Object.values(Consumers).filter((name) => typeof name === "string");
    expect(new Set(names).size).toBe(names.length);
  });

  it("keeps a step's deltas out of the run's events and cancels (RUN_EVENTS stores run.*.events)", () => {
    const deltas = Subjects.runDeltas("run_1", 3);
    expect(deltas).toBe("run.run_1.deltas.3");
    expect(matches(Subjects.runEventsAll, deltas)).toBe(false);
    expect(matches(Subjects.runCancelledAll, deltas)).toBe(false);
    expect(matches(Subjects.runEventsAll, Subjects.runEvents("run_1"))).toBe(true);
  });
});
