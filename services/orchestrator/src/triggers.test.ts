import { AgentConfig } from "@agent-runtime/config";
import { describe, expect, it } from "vitest";
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

  it("leaves out a missing subject and data, and cuts long data at 8000 characters", () => {
    const bare = renderEvent({ specversion: "1.0", id: "e2", source: "cron", type: "tick" });
    expect(bare).toBe("An event arrived.\ntype: tick\nsource: cron\nid: e2");
    const long = renderEvent({
      specversion: "1.0",
      id: "e3",
      source: "s",
      type: "t",
      data: "x".repeat(9000),
    });
    expect(long.slice(long.indexOf("data: ") + "data: ".length)).toHaveLength(8000);
  });

  it("treats regular-expression characters in a trigger literally", () => {
    const special = { plus: AgentConfig.parse({ triggers: ["a+b.(c)"] }) };
    expect(matchingAgents(special, "a+b.(c)", "t")).toEqual(["plus"]);
    expect(matchingAgents(special, "aab.c", "t")).toEqual([]);
  });
});
