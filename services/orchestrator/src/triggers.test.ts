import { AgentConfig } from "@agent-runtime/config";
import { describe, expect, it } from "vitest";
import { needsPlan } from "./planner.js";
import { matchingAgents, renderEvent } from "./triggers.js";

const agents = {
  orders: AgentConfig.parse({ triggers: ["com.example.order.*"] }),
  exact: AgentConfig.parse({ triggers: ["com.example.order.created"] }),
  private: AgentConfig.parse({ triggers: ["*"], tenants: ["acme"] }),
  none: AgentConfig.parse({}),
};

describe("event triggers", () => {
  it("matches event types by glob, only for agents the tenant may use", () => {
    expect(matchingAgents(agents, "com.example.order.created", "acme")).toEqual([
      "orders",
      "exact",
      "private",
    ]);
    expect(matchingAgents(agents, "com.example.order.paid", "other")).toEqual(["orders"]);
    // dots are literal and the whole type must match
    expect(matchingAgents(agents, "comXexampleXorderXpaid", "other")).toEqual([]);
    expect(matchingAgents(agents, "prefix.com.example.order.created", "other")).toEqual([]);
  });

  it("renders an event as the run's input", () => {
    const text = renderEvent({
      specversion: "1.0",
      id: "e1",
      source: "shop",
      type: "com.example.order.created",
      subject: "order/42",
      data: { total: 5 },
    });
    expect(text).toContain("type: com.example.order.created");
    expect(text).toContain("source: shop");
    expect(text).toContain("subject: order/42");
    expect(text).toContain('data: {"total":5}');
  });
});

describe("planning decision", () => {
  it("skips planning for a short single request and plans multi-part ones", () => {
    expect(needsPlan([{ role: "user", content: "hi there" }]).needed).toBe(false);
    const decision = needsPlan([
      { role: "user", content: "Add 17 and 25. Then explain it. Finally, check the result." },
    ]);
    expect(decision).toMatchObject({ needed: true });
    expect(decision.reason).toMatch(/3 sentences/);
  });
});
