import { z } from "zod";
import type { RouteRule } from "./models.js";
import { agentRuleName, chooseVariant, type StickyFields } from "./variants.js";

/** A regular expression source that compiles (checked at start-up, not on the first run that needs it). */
const Pattern = z.string().superRefine((source, context) => {
  try {
    new RegExp(source, "i");
  } catch (error) {
    context.addIssue({
      code: "custom",
      message: `not a valid regular expression: ${error instanceof Error ? error.message : String(error)}`,
    });
  }
});

export const GuardrailsConfig = z.object({
  maxInputChars: z.number().int().positive().default(32_000),
  denyPatterns: z.array(Pattern).default([]),
  redactPii: z.array(z.enum(["email", "phone", "credit_card", "ssn", "ip"])).default([]),
  outputDenyPatterns: z.array(Pattern).default([]),
  outputJsonSchema: z.record(z.string(), z.unknown()).optional(),
  numericBounds: z
    .record(z.string(), z.object({ min: z.number().optional(), max: z.number().optional() }))
    .optional(),
});
export type GuardrailsConfig = z.infer<typeof GuardrailsConfig>;

/**
 * One arm of an agent's A/B test: a tier or model for its steps, a system prompt, or both. Each
 * user (or thread, or run: `stickyBy`) stays in one variant; usage records and `/v1/stats` name it.
 */
export const AgentVariant = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,60}$/),
    weight: z.number().positive(),
    tier: z.string().optional(),
    model: z.string().optional(),
    systemPrompt: z.string().optional(),
  })
  .strict()
  .refine((variant) => !(variant.tier && variant.model), {
    message: "a variant names a tier or a model, not both",
  });
export type AgentVariant = z.infer<typeof AgentVariant>;

export const AgentConfig = z.object({
  description: z.string().default(""),
  systemPrompt: z.string().default("You are a helpful assistant."),
  tier: z.string().optional(),
  model: z.string().optional(),
  /**
   * The name of a top-level `routes` rule whose tier (or variants) every step of this agent uses,
   * whatever that rule's `when` says. Exclusive with `tier`, `model` and `variants`.
   */
  route: z.string().optional(),
  /** Weighted A/B variants (two models, two prompts, …), chosen sticky by `stickyBy`. */
  variants: z.array(AgentVariant).min(2).optional(),
  stickyBy: z.enum(["user", "thread", "run"]).default("user"),
  /**
   * Opt-in: the agent's steps go to the `strong` tier unless a rule routes them first (a rule with
   * `when.deepAnalysis` reads a request's own opt-in). Off by default, as it costs more.
   */
  deepAnalysis: z.boolean().default(false),
  tools: z.array(z.string()).default([]),
  maxSteps: z.number().int().positive().default(8),
  timeBudgetMs: z.number().int().positive().default(120_000),
  costBudgetUsd: z.number().positive().default(1),
  memory: z
    .object({
      /** Was never read: refused so a config does not believe it bounds the history. */
      historyBudgetTokens: z
        .never({
          error:
            "memory.historyBudgetTokens is not supported: contextBudgetTokens bounds the whole context (history, summary and retrieved memories)",
        })
        .optional(),
      contextBudgetTokens: z.number().int().positive().default(8000),
      retrieval: z.boolean().default(false),
      /**
       * Whose long-term memories retrieval and `memory_search` read: `user` (the caller's own plus
       * the tenant's shared ones) or `tenant` (every user's: tenant-wide knowledge, opt-in).
       */
      scope: z.enum(["user", "tenant"]).default("user"),
    })
    .default({ contextBudgetTokens: 8000, retrieval: false, scope: "user" }),
  planner: z.boolean().default(false),
  delegates: z.array(z.string()).default([]),
  guardrails: GuardrailsConfig.default({
    maxInputChars: 32_000,
    denyPatterns: [],
    redactPii: [],
    outputDenyPatterns: [],
  }),
  /** CloudEvents types (glob `*` allowed) that start this agent. */
  triggers: z.array(z.string()).default([]),
  /** Which tenants may use it (empty = all). */
  tenants: z.array(z.string()).default([]),
});
export type AgentConfig = z.infer<typeof AgentConfig>;

/** Whether `tenant` may use the agent: it lists the tenant, or lists none (open to all). */
export function agentOpenTo(agent: AgentConfig, tenant: string): boolean {
  return agent.tenants.length === 0 || agent.tenants.includes(tenant);
}

/** The agents `tenant` may use, in configuration order (the built-in gateway agent is not one of them). */
export function agentsOpenTo(
  agents: Record<string, AgentConfig>,
  tenant: string,
): [name: string, agent: AgentConfig][] {
  return Object.entries(agents).filter(([name, agent]) => isListedAgent(name) && agentOpenTo(agent, tenant));
}

/** Settings of one agent that cannot go together; each issue names its path below the agent. */
function checkAgentRouting(agent: AgentConfig): Array<{ path: (string | number)[]; message: string }> {
  const issues: Array<{ path: (string | number)[]; message: string }> = [];
  const pinned = agent.tier ? "tier" : agent.model ? "model" : undefined;
  if (agent.route && pinned)
    issues.push({ path: ["route"], message: `route and ${pinned} both choose the model: keep one` });
  if (agent.route && agent.variants)
    issues.push({
      path: ["variants"],
      message: "an agent with a route takes its variants from that route: remove one",
    });
  if (agent.variants) {
    const names = new Set<string>();
    agent.variants.forEach((variant, index) => {
      if (names.has(variant.name))
        issues.push({ path: ["variants", index, "name"], message: `variant "${variant.name}" twice` });
      names.add(variant.name);
      if (pinned && (variant.tier || variant.model))
        issues.push({
          path: ["variants", index],
          message: `the agent's ${pinned} wins over a variant's tier or model: set them on the variants only`,
        });
      if (!variant.tier && !variant.model && variant.systemPrompt === undefined)
        issues.push({
          path: ["variants", index],
          message: "a variant changes a tier, a model or the system prompt",
        });
    });
  }
  return issues;
}

export const AgentsSection = z.object({
  /**
   * The agent a chat request runs when it names no `model`. A `model` that names a served model
   * instead of an agent runs a plain turn on that model (`GATEWAY_AGENT`).
   */
  defaultAgent: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,100}$/)
    .default("assistant"),
  agents: z
    .record(z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/), AgentConfig)
    .default({})
    .superRefine((agents, context) => {
      for (const [name, agent] of Object.entries(agents))
        for (const issue of checkAgentRouting(agent))
          context.addIssue({ code: "custom", path: [name, ...issue.path], message: issue.message });
      // a delegate must name an agent that exists (configured or default)
      for (const [name, agent] of Object.entries(agents)) {
        agent.delegates.forEach((delegate, index) => {
          if (!(delegate in agents) && !(delegate in DEFAULT_AGENTS)) {
            context.addIssue({
              code: "custom",
              path: [name, "delegates", index],
              message: `no agent named "${delegate}" to delegate to`,
            });
          }
          if (delegate === name) {
            context.addIssue({
              code: "custom",
              path: [name, "delegates", index],
              message: "an agent cannot delegate to itself",
            });
          }
        });
      }
    }),
});
export type AgentsSection = z.infer<typeof AgentsSection>;

export const DEFAULT_AGENTS: Record<string, z.input<typeof AgentConfig>> = {
  assistant: {
    description: "General assistant with a calculator and the clock.",
    systemPrompt: "You are a helpful, concise assistant. Use tools when they give a more exact answer.",
    tools: ["calculator", "current_time"],
  },
};

/**
 * The agent of a chat request whose `model` names a served model rather than an agent (a client
 * written for OpenAI that only changed its base URL): a plain turn on that model, the runtime as a
 * gateway. It has no system prompt, no tools of its own (the client's tools only), no retrieval, and
 * a context budget that never trims what the client sent; the runtime's caches, limits, routing
 * fallbacks, budgets and accounting still apply. Its name cannot be configured (agent names have no
 * `@`), and it is not listed among the agents.
 */
export const GATEWAY_AGENT = "@gateway";

const GATEWAY_AGENT_CONFIG: z.input<typeof AgentConfig> = {
  description: "A plain turn on the model the request names, with the client's own tools only.",
  systemPrompt: "",
  tools: [],
  memory: { contextBudgetTokens: 1_000_000, retrieval: false, scope: "user" },
  // what the client sends is the provider's to judge: only the request size limits apply
  guardrails: { maxInputChars: 4_000_000, denyPatterns: [], redactPii: [], outputDenyPatterns: [] },
};

/** Whether `name` is a configured (or default) agent rather than the built-in gateway agent. */
export function isListedAgent(name: string): boolean {
  return name !== GATEWAY_AGENT;
}

/**
 * The configured agents over the defaults (a configured `assistant` replaces the default one), and
 * the built-in gateway agent.
 */
export function resolveAgents(configured: Record<string, AgentConfig>): Record<string, AgentConfig> {
  const agents: Record<string, AgentConfig> = {};
  for (const [name, agent] of Object.entries(DEFAULT_AGENTS)) agents[name] = AgentConfig.parse(agent);
  Object.assign(agents, configured);
  agents[GATEWAY_AGENT] = AgentConfig.parse(GATEWAY_AGENT_CONFIG);
  return agents;
}

/**
 * The route rules the agents add to `routes`: an agent's `route` (the named rule's tier or
 * variants for every step of the agent) and its `variants` go first, ahead of the configured
 * rules; `deepAnalysis` goes last, so a configured rule still routes the agent's steps first (as a
 * request's own deep-analysis opt-in does). Unknown route names are refused by `checkAgentRoutes`.
 */
export function agentRouteRules(
  agents: Record<string, AgentConfig>,
  routes: readonly RouteRule[],
  tiers: Record<string, unknown>,
): { first: RouteRule[]; last: RouteRule[] } {
  const first: RouteRule[] = [];
  const last: RouteRule[] = [];
  for (const [name, agent] of Object.entries(agents)) {
    const named = agent.route ? routes.find((rule) => rule.name === agent.route) : undefined;
    if (named) first.push({ ...named, when: { agent: [name] } });
    else if (agent.variants)
      first.push({
        name: agentRuleName(name),
        when: { agent: [name] },
        variants: agent.variants.map((variant) => ({
          name: variant.name,
          weight: variant.weight,
          ...(variant.tier ? { tier: variant.tier } : {}),
          ...(variant.model ? { model: variant.model } : {}),
        })),
        stickyBy: agent.stickyBy,
      });
    if (agent.deepAnalysis && !agent.tier && !agent.model && tiers.strong)
      last.push({ name: `deep-analysis:${name}`, when: { agent: [name] }, tier: "strong", stickyBy: "user" });
  }
  return { first, last };
}

/** Issues of agents whose `route` names no rule, for a superRefine over the whole config. */
export function checkAgentRoutes(
  agents: Record<string, AgentConfig>,
  routes: readonly RouteRule[],
): Array<{ path: string[]; message: string }> {
  const names = new Set(routes.map((rule) => rule.name));
  return Object.entries(agents)
    .filter(([, agent]) => agent.route !== undefined && !names.has(agent.route))
    .map(([name, agent]) => ({
      path: ["agents", name, "route"],
      message: `no route named "${agent.route}" in routes (known: ${[...names].join(", ") || "none"})`,
    }));
}

/**
 * The variant of an agent a request falls in (its prompt, tier or model), the same one the model
 * proxy routes and records for the request's model calls. Undefined for an agent without variants.
 */
export function chooseAgentVariant(
  name: string,
  agent: AgentConfig,
  meta: StickyFields,
): AgentVariant | undefined {
  if (!agent.variants) return undefined;
  return chooseVariant(
    { name: agentRuleName(name), variants: agent.variants, stickyBy: agent.stickyBy },
    meta,
  );
}
