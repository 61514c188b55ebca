import { z } from "zod";

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

export const AgentConfig = z.object({
  description: z.string().default(""),
  systemPrompt: z.string().default("You are a helpful assistant."),
  tier: z.string().optional(),
  model: z.string().optional(),
  /** Was never read: refused so a config does not believe it routes. */
  route: z
    .never({
      error:
        "agents.<name>.route is not supported: route by agent with the top-level `routes` rules (`when: { agent: [...] }`), or pin the agent with `tier` or `model`",
    })
    .optional(),
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

export const AgentsSection = z.object({
  /**
   * The agent a chat request runs when its `model` names a configured model or tier instead of an
   * agent (a client written for OpenAI that only changed its base URL): that agent, pinned to the model.
   */
  defaultAgent: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,100}$/)
    .default("assistant"),
  agents: z
    .record(z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/), AgentConfig)
    .default({})
    .superRefine((agents, context) => {
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

/** The configured agents over the defaults (a configured `assistant` replaces the default one). */
export function resolveAgents(configured: Record<string, AgentConfig>): Record<string, AgentConfig> {
  const agents: Record<string, AgentConfig> = {};
  for (const [name, agent] of Object.entries(DEFAULT_AGENTS)) agents[name] = AgentConfig.parse(agent);
  return Object.assign(agents, configured);
}
