import { z } from "zod";

export const GuardrailsConfig = z.object({
  maxInputChars: z.number().int().positive().default(32_000),
  denyPatterns: z.array(z.string()).default([]),
  redactPii: z.array(z.enum(["email", "phone", "credit_card", "ssn", "ip"])).default([]),
  outputDenyPatterns: z.array(z.string()).default([]),
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
  route: z.string().optional(),
  tools: z.array(z.string()).default([]),
  maxSteps: z.number().int().positive().default(8),
  timeBudgetMs: z.number().int().positive().default(120_000),
  costBudgetUsd: z.number().positive().default(1),
  memory: z
    .object({
      historyBudgetTokens: z.number().int().positive().default(4000),
      contextBudgetTokens: z.number().int().positive().default(8000),
      retrieval: z.boolean().default(false),
    })
    .default({ historyBudgetTokens: 4000, contextBudgetTokens: 8000, retrieval: false }),
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
  agents: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/), AgentConfig).default({}),
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
