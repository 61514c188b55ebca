import type { ModelUsageRecord, ToolUsageRecord } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { routeRows } from "./route-stats.js";

const ts = Date.UTC(2026, 11, 2, 12);
const chat = (extra: Partial<ModelUsageRecord>): ModelUsageRecord => ({
  v: 1,
  id: `id-${Math.random()}`,
  ts,
  tenant: "acme",
  agent: "desk",
  requestId: "r",
  kind: "chat",
  route: "answer",
  routeReason: "route agent:desk: variant a",
  tier: "fast",
  model: "fast-mini",
  provider: "p",
  usage: { promptTokens: 100, completionTokens: 10, cachedTokens: 40, totalTokens: 110 },
  usageEstimated: false,
  costUsd: 0.5,
  latencyMs: 20,
  retries: 0,
  fallbacks: 0,
  cached: false,
  status: "ok",
  ...extra,
});

describe("routeRows", () => {
  it("sums chat calls per agent, route, tier and variant; a cache hit counts as a call without tokens", () => {
    const tool: ToolUsageRecord = {
      v: 1,
      id: "t",
      ts,
      tenant: "acme",
      tool: "lookup",
      callId: "c",
      status: "ok",
      latencyMs: 5,
      cached: false,
      replayed: false,
    } as ToolUsageRecord;
    const rows = routeRows([
      chat({ variant: "a" }),
      chat({ variant: "a", cached: true, costUsd: 0 }),
      chat({ variant: "b", tier: "strong", costUsd: 2, status: "error" }),
      chat({ route: "plan" }),
      chat({ kind: "embed", variant: "a" }),
      tool,
    ]);
    expect(rows.map((row) => row.key)).toEqual([
      ["acme", "2026-12-02", "desk", "answer", "fast", "a"],
      ["acme", "2026-12-02", "desk", "answer", "strong", "b"],
      ["acme", "2026-12-02", "desk", "plan", "fast", ""],
    ]);
    expect(rows[0]).toMatchObject({
      calls: 2,
      promptTokens: 100,
      cachedTokens: 40,
      completionTokens: 10,
      costUsd: 0.5,
      cacheHits: 1,
      errors: 0,
      latencyMsSum: 40,
    });
    expect(rows[1]).toMatchObject({ calls: 1, costUsd: 2, errors: 1 });
  });
});
