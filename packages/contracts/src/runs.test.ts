import { describe, expect, it } from "vitest";
import { buildRunRequest, RunRequest, type RunRequestInit } from "./runs.js";

const base: RunRequestInit = {
  runId: "run_1",
  tenant: "acme",
  agent: "assistant",
  input: [{ role: "user", content: "hi" }],
  priority: "interactive",
  source: "runs",
  createdAt: 1_000_000,
  timeoutMs: 60_000,
};

describe("buildRunRequest", () => {
  it("fills the common fields: version, deadline from the timeout, no stream, the source's channel", () => {
    const run = buildRunRequest(base);
    expect(run).toEqual({
      v: 1,
      runId: "run_1",
      tenant: "acme",
      agent: "assistant",
      input: [{ role: "user", content: "hi" }],
      priority: "interactive",
      source: "runs",
      createdAt: 1_000_000,
      deadline: 1_060_000,
      stream: false,
      channel: "runs",
    });
    expect(RunRequest.parse(run)).toEqual(run);
  });

  it("starts the clock now when no createdAt is given", () => {
    const before = Date.now();
    const { createdAt: _createdAt, ...init } = base;
    const run = buildRunRequest(init);
    expect(run.createdAt).toBeGreaterThanOrEqual(before);
    expect(run.createdAt).toBeLessThanOrEqual(Date.now());
    expect(run.deadline - run.createdAt).toBe(60_000);
  });

  it("never sets a deadline past notAfter, and keeps its own when it is earlier", () => {
    expect(buildRunRequest({ ...base, notAfter: 1_030_000 }).deadline).toBe(1_030_000);
    expect(buildRunRequest({ ...base, notAfter: 2_000_000 }).deadline).toBe(1_060_000);
  });

  it("leaves undefined fields out and keeps the ones given", () => {
    const run = buildRunRequest({
      ...base,
      threadId: "thread_1",
      userId: undefined,
      metadata: { k: "v" },
      deepAnalysis: true,
      stream: true,
    });
    expect("userId" in run).toBe(false);
    expect(run).toMatchObject({
      threadId: "thread_1",
      metadata: { k: "v" },
      deepAnalysis: true,
      stream: true,
    });
  });

  it("takes the channel given, and gives a delegated run none of its own", () => {
    expect(buildRunRequest({ ...base, source: "event" }).channel).toBe("events");
    expect(buildRunRequest({ ...base, source: "delegate", channel: "chat" }).channel).toBe("chat");
    expect("channel" in buildRunRequest({ ...base, source: "delegate" })).toBe(false);
  });

  it("refuses a timeout that is not a positive whole number of ms", () => {
    expect(() => buildRunRequest({ ...base, timeoutMs: 0 })).toThrow(/timeoutMs must be a positive/);
    expect(() => buildRunRequest({ ...base, timeoutMs: Number.NaN })).toThrow(RangeError);
    expect(() => buildRunRequest({ ...base, notAfter: 1.5 })).toThrow(/notAfter/);
  });
});
