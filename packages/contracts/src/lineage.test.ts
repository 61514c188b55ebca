import { describe, expect, it } from "vitest";
import { inLineageOf, runLineage } from "./lineage.js";

describe("run lineage", () => {
  it("names a delegated run's ancestors, nearest first", () => {
    expect(runLineage("run_a")).toEqual(["run_a"]);
    expect(runLineage("run_a:child:2:0:child:0:1")).toEqual([
      "run_a:child:2:0:child:0:1",
      "run_a:child:2:0",
      "run_a",
    ]);
  });

  it("tells descendants from other runs", () => {
    expect(inLineageOf("run_a:child:2:0", "run_a")).toBe(true);
    expect(inLineageOf("run_a", "run_a")).toBe(true);
    expect(inLineageOf("run_ab:child:2:0", "run_a")).toBe(false);
    expect(inLineageOf("run_a", "run_a:child:2:0")).toBe(false);
  });
});
