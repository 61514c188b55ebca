import { describe, expect, it } from "vitest";
import {
  AgentConfig,
  AgentsSection,
  agentOpenTo,
  agentRouteRules,
  agentsOpenTo,
  chooseAgentVariant,
  GATEWAY_AGENT,
  resolveAgents,
} from "./agents.js";
import { RouteRule } from "./models.js";
import { chooseVariant } from "./variants.js";

const agent = (input: unknown) => AgentConfig.parse(input);

describe("agent variants", () => {
  const ab = agent({
    systemPrompt: "default prompt",
    variants: [
      { name: "mini", weight: 3, model: "fast-mini", systemPrompt: "short prompt" },
      { name: "large", weight: 1, model: "strong-large" },
    ],
  });

  it("become one agent rule ahead of the configured ones, with the variants' models and weights", () => {
    const { first, last } = agentRouteRules({ desk: ab }, [], { fast: ["fast-mini"] });
    expect(last).toEqual([]);
    expect(first).toEqual([
      RouteRule.parse({
        name: "agent:desk",
        when: { agent: ["desk"] },
        variants: [
          { name: "mini", weight: 3, model: "fast-mini" },
          { name: "large", weight: 1, model: "strong-large" },
        ],
        stickyBy: "user",
      }),
    ]);
  });

  it("the orchestrator's choice (the prompt) is the model proxy's (the model and the usage label)", () => {
    const [rule] = agentRouteRules({ desk: ab }, [], {}).first;
    const chosen = { mini: 0, large: 0 };
    for (let user = 0; user < 2000; user++) {
      const meta = { requestId: `r${user}`, runId: `run${user}`, userId: `user-${user}` };
      const variant = chooseAgentVariant("desk", ab, meta)!;
      expect(
        chooseVariant({ ...rule!, variants: rule!.variants! }, { ...meta, requestId: "another step" }).name,
      ).toBe(variant.name);
      chosen[variant.name as "mini" | "large"]++;
    }
    // weights 3:1
    expect(chosen.mini / 2000).toBeGreaterThan(0.7);
    expect(chosen.mini / 2000).toBeLessThan(0.8);
    // sticky: a user keeps its variant across runs
    const one = chooseAgentVariant("desk", ab, { requestId: "a", runId: "r1", userId: "same" })!.name;
    expect(chooseAgentVariant("desk", ab, { requestId: "b", runId: "r2", userId: "same" })!.name).toBe(one);
    expect(chooseAgentVariant("plain", agent({}), { requestId: "a" })).toBeUndefined();
  });

  it("a run without a user stays in one variant for all its steps", () => {
    const first = chooseAgentVariant("desk", ab, { requestId: "step-1", runId: "run-x" })!.name;
    for (let step = 2; step < 20; step++)
      expect(chooseAgentVariant("desk", ab, { requestId: `step-${step}`, runId: "run-x" })!.name).toBe(first);
  });

  it("an agent's route copies the named rule (its tier or variants) for that agent only", () => {
    const routes = [
      RouteRule.parse({
        name: "split",
        when: { minComplexity: 0.9 },
        variants: [
          { name: "a", weight: 1, tier: "fast" },
          { name: "b", weight: 1, tier: "strong" },
        ],
      }),
    ];
    const { first } = agentRouteRules({ helper: agent({ route: "split" }) }, routes, {});
    expect(first).toEqual([{ ...routes[0], when: { agent: ["helper"] } }]);
  });

  it("deep analysis is opt-in and goes last, and only with a strong tier", () => {
    expect(agent({}).deepAnalysis).toBe(false);
    const deep = { thinker: agent({ deepAnalysis: true }) };
    expect(agentRouteRules(deep, [], { strong: ["x"] }).last).toEqual([
      { name: "deep-analysis:thinker", when: { agent: ["thinker"] }, tier: "strong", stickyBy: "user" },
    ]);
    expect(agentRouteRules(deep, [], { fast: ["x"] }).last).toEqual([]);
  });
});

describe("agent visibility", () => {
  const open = agent({});
  const closed = agent({ tenants: ["acme", "globex"] });

  it("an agent that lists no tenants is open to every tenant", () => {
    expect(agentOpenTo(open, "acme")).toBe(true);
    expect(agentOpenTo(open, "anyone")).toBe(true);
  });

  it("an agent that lists tenants is open to those alone", () => {
    expect(agentOpenTo(closed, "acme")).toBe(true);
    expect(agentOpenTo(closed, "globex")).toBe(true);
    expect(agentOpenTo(closed, "initech")).toBe(false);
    expect(agentOpenTo(closed, "")).toBe(false);
  });

  it("lists the agents open to a tenant in configuration order", () => {
    const agents = { first: open, second: closed, third: agent({ tenants: ["initech"] }) };
    expect(agentsOpenTo(agents, "acme").map(([name]) => name)).toEqual(["first", "second"]);
    expect(agentsOpenTo(agents, "initech")).toEqual([
      ["first", open],
      ["third", agents.third],
    ]);
    expect(agentsOpenTo({}, "acme")).toEqual([]);
  });
});

describe("the gateway agent", () => {
  it("is always there, with no system prompt, tools or retrieval, and never listed", () => {
    const agents = resolveAgents({ helper: agent({ tools: ["calculator"] }) });
    const gateway = agents[GATEWAY_AGENT]!;
    expect(gateway.systemPrompt).toBe("");
    expect(gateway.tools).toEqual([]);
    expect(gateway.delegates).toEqual([]);
    expect(gateway.planner).toBe(false);
    expect(gateway.memory.retrieval).toBe(false);
    expect(gateway.memory.contextBudgetTokens).toBeGreaterThanOrEqual(1_000_000);
    expect(agentsOpenTo(agents, "acme").map(([name]) => name)).toEqual(["assistant", "helper"]);
  });

  it("cannot be configured: agent names have no @", () => {
    expect(AgentsSection.safeParse({ agents: { [GATEWAY_AGENT]: {} } }).success).toBe(false);
    expect(AgentsSection.safeParse({ defaultAgent: GATEWAY_AGENT }).success).toBe(false);
  });
});
