import { RunEvent, RunRecord } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { ApiRun, ApiRunEvent } from "./api-schemas.js";
import { cancelledView, runEventView, runView, threadMessageView } from "./run-view.js";

const usage = { promptTokens: 12, completionTokens: 5, cachedTokens: 4, totalTokens: 17 };

const record = RunRecord.parse({
  runId: "run_1",
  tenant: "acme",
  agent: "assistant",
  status: "failed",
  priority: "batch",
  threadId: "thread_1",
  userId: "ada",
  parentRunId: "run_0",
  steps: 3,
  usage,
  costUsd: 0.0042,
  output: null,
  error: { code: "timeout", message: "too slow", retryable: true, retryAfterMs: 500 },
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:02.000Z",
  finishedAt: "2026-01-01T00:00:02.000Z",
});

/** Every key of a JSON value, at any depth. */
const keysOf = (value: unknown): string[] =>
  Array.isArray(value)
    ? value.flatMap(keysOf)
    : value && typeof value === "object"
      ? Object.entries(value).flatMap(([key, inner]) => [key, ...keysOf(inner)])
      : [];

describe("the HTTP views of runs, run events and thread messages", () => {
  it("renders a run record as the snake_case run resource, every field kept", () => {
    const view = runView(record);
    expect(ApiRun.strict().parse(view)).toEqual(view);
    expect(view).toEqual({
      id: "run_1",
      object: "run",
      tenant: "acme",
      agent: "assistant",
      status: "failed",
      priority: "batch",
      thread_id: "thread_1",
      user_id: "ada",
      parent_run_id: "run_0",
      steps: 3,
      usage: { prompt_tokens: 12, completion_tokens: 5, cached_tokens: 4, total_tokens: 17 },
      cost_usd: 0.0042,
      output: null,
      error: { code: "timeout", message: "too slow", retryable: true, retry_after_ms: 500 },
      created_at: "2026-01-01T00:00:00.000Z",
      updated_at: "2026-01-01T00:00:02.000Z",
      finished_at: "2026-01-01T00:00:02.000Z",
    });
    // one field per record field: a field added to the record without a view fails here
    expect(Object.keys(view)).toHaveLength(Object.keys(RunRecord.shape).length + 1);
  });

  it("renders the cancel answer as the run with the cancel's status", () => {
    const view = cancelledView(
      { ...record, status: "running", error: null, finishedAt: null },
      {
        runId: "run_1",
        status: "cancelled",
        cancelled: true,
      },
    );
    expect(view).toMatchObject({
      id: "run_1",
      object: "run",
      status: "cancelled",
      cancelled: true,
      error: null,
    });
  });

  it("renders every kind of run event with snake_case keys that the documented schema names", () => {
    const base = { runId: "run_1", seq: 1, ts: 1_700_000_000_000 };
    const events = [
      { ...base, type: "run-started", agent: "assistant", attempt: 1 },
      { ...base, type: "step-started", step: 0, kind: "model" },
      {
        ...base,
        type: "delta",
        step: 0,
        content: "hi",
        offset: 0,
        toolCalls: [{ index: 0, id: "call_1", name: "search", arguments: "{}" }],
      },
      { ...base, type: "tool-called", step: 1, callId: "call_1", name: "search", arguments: "{}" },
      {
        ...base,
        type: "tool-result",
        step: 1,
        callId: "call_1",
        name: "search",
        status: "ok",
        content: "found",
        latencyMs: 12,
        cached: false,
      },
      { ...base, type: "usage", step: 0, model: "gpt-4o-mini", provider: "openai", usage, costUsd: 0.001 },
      {
        ...base,
        type: "run-finished",
        status: "failed",
        output: { role: "assistant", content: "partial" },
        finishReason: "stop",
        usage,
        costUsd: 0.002,
        steps: 2,
        error: { code: "internal", message: "boom", retryable: false, retryAfterMs: 0 },
        threadId: "thread_1",
      },
    ].map((event) => RunEvent.parse(event));
    const views = events.map(runEventView);
    for (const view of views) expect(ApiRunEvent.parse(view)).toEqual(view);
    const keys = new Set(keysOf(views));
    for (const snake of ["run_id", "call_id", "latency_ms", "cost_usd", "tool_calls", "finish_reason"])
      expect(keys).toContain(snake);
    for (const snake of ["thread_id", "retry_after_ms", "prompt_tokens", "cached_tokens"])
      expect(keys).toContain(snake);
    expect([...keys].filter((key) => /[a-z][A-Z]/.test(key))).toEqual([]);
  });

  it("renders a thread message with created_at", () => {
    const message = { role: "user" as const, content: "hello" };
    expect(
      threadMessageView({ id: "m1", message, createdAt: "2026-01-01T00:00:00.000Z", tokens: 2 }),
    ).toEqual({
      id: "m1",
      message,
      created_at: "2026-01-01T00:00:00.000Z",
      tokens: 2,
    });
    expect(threadMessageView({ id: "m2", message })).toEqual({ id: "m2", message });
  });
});
