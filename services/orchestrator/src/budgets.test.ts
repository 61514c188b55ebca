import { AgentConfig } from "@agent-runtime/config";
import { RunRequest } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { nextStep } from "./agent-loop.js";
import { RunBudget } from "./budgets.js";
import type { RecordedStep } from "./run-store.js";

const now = 1_000_000;
const agent = AgentConfig.parse({ maxSteps: 4, costBudgetUsd: 0.5, timeBudgetMs: 10_000 });
const request = (budget?: RunRequest["budget"], deadline = now + 60_000) =>
  RunRequest.parse({
    v: 1,
    runId: "run_1",
    tenant: "acme",
    agent: "assistant",
    input: [{ role: "user", content: "hi" }],
    priority: "interactive",
    createdAt: now,
    deadline,
    ...(budget ? { budget } : {}),
  });
const usage = (total: number) => ({
  promptTokens: total,
  completionTokens: 0,
  cachedTokens: 0,
  totalTokens: total,
});
const step = (index: number, costUsd: number): RecordedStep => ({
  step: index,
  assistant: { role: "assistant", content: null, tool_calls: [] },
  toolMessages: [],
  usage: usage(10),
  costUsd,
});

describe("run budgets", () => {
  it("take the tighter of the agent's and the request's limits, time never past the deadline", () => {
    const loose = new RunBudget(request({ maxSteps: 100, costUsd: 5, timeMs: 60_000 }), agent, now, []);
    expect([loose.maxSteps, loose.costLimitUsd, loose.timeLimit]).toEqual([4, 0.5, now + 10_000]);
    const tight = new RunBudget(request({ maxSteps: 2, costUsd: 0.1, timeMs: 1000 }), agent, now, []);
    expect([tight.maxSteps, tight.costLimitUsd, tight.timeLimit]).toEqual([2, 0.1, now + 1000]);
    const late = new RunBudget(request(undefined, now + 3000), agent, now, []);
    expect(late.timeLimit).toBe(now + 3000);
  });

  it("count recorded steps and every later spend, and say which budget stops the next step", () => {
    const steps = [step(0, 0.2)];
    const budget = new RunBudget(request(), agent, now, steps);
    expect(budget.spent()).toEqual({ spentUsd: 0.2, usage: usage(10), steps: 1 });
    expect(budget.exhausted(1, now)).toBeUndefined();

    budget.spend({ usage: usage(5), costUsd: 0.2 });
    budget.spendUsd(0.1);
    expect(budget.remainingUsd).toBeCloseTo(0);
    expect(budget.exhausted(1, now)).toMatchObject({
      code: "budget_exceeded",
      retryable: false,
      details: { budget: "cost", limitUsd: 0.5, usage: usage(15), steps: 1 },
    });
  });

  it("stop at the step limit first, then cost, then time", () => {
    const budget = new RunBudget(request(), agent, now, []);
    expect(budget.exhausted(4, now)?.details).toMatchObject({ budget: "steps", limit: 4 });
    expect(budget.exhausted(0, now + 10_000)?.details).toMatchObject({ budget: "time", limitMs: 10_000 });
    expect(budget.timeUsedUp("model call timed out").message).toBe(
      "time budget of 10000 ms used up (model call timed out)",
    );
  });
});

describe("next step", () => {
  const call = (name: string) => ({
    id: `call_${name}`,
    type: "function" as const,
    function: { name, arguments: "{}" },
  });
  const client = new Set(["client_lookup"]);

  it("answers when the model calls no tool, or any of the client's own", () => {
    expect(nextStep({ role: "assistant", content: "done" }, client).kind).toBe("answer");
    expect(
      nextStep(
        { role: "assistant", content: null, tool_calls: [call("calculator"), call("client_lookup")] },
        client,
      ).kind,
    ).toBe("answer");
  });

  it("runs the server's tools otherwise", () => {
    const next = nextStep(
      { role: "assistant", content: null, tool_calls: [call("calculator"), call("delegate")] },
      client,
    );
    expect(next.kind).toBe("tools");
    if (next.kind === "tools")
      expect(next.calls.map((c) => c.function.name)).toEqual(["calculator", "delegate"]);
  });
});
