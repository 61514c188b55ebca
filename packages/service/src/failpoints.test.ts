import { describe, expect, it } from "vitest";
import { failpoints, failpointsEnv } from "./failpoints.js";

const NAMES = ["after-claim", "after-final-write"] as const;

describe("failpoints", () => {
  it("reads a comma list of the service's own names, and refuses any other", () => {
    const env = failpointsEnv(NAMES);
    expect(env.parse(undefined)).toEqual([]);
    expect(env.parse(" after-claim , after-final-write,")).toEqual(["after-claim", "after-final-write"]);
    const refused = env.safeParse("after-claim,after-everything");
    expect(refused.success).toBe(false);
    expect(JSON.stringify(refused.error?.issues)).toContain("after-claim");
  });

  it("kills the process at an armed point only", () => {
    const killed: Array<[number, string | number | undefined]> = [];
    const kill = process.kill;
    process.kill = ((pid: number, signal?: string | number) => {
      killed.push([pid, signal]);
      return true;
    }) as typeof process.kill;
    try {
      failpoints<(typeof NAMES)[number]>([])("after-claim");
      const armed = failpoints<(typeof NAMES)[number]>(["after-claim"]);
      armed("after-final-write");
      expect(killed).toEqual([]);
      armed("after-claim");
      expect(killed).toEqual([[process.pid, "SIGKILL"]]);
    } finally {
      process.kill = kill;
    }
  });
});
