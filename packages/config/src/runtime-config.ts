import type { z } from "zod";
import { AgentsSection, agentRouteRules, checkAgentRoutes } from "./agents.js";
import { LimitsSection } from "./limits.js";
import { parseConfig, readConfigFile } from "./load.js";
import { MemorySection } from "./memory.js";
import { ModelsSection } from "./models.js";
import { ToolsSection } from "./tools.js";

/** The whole `AGENT_CONFIG` file: each service reads the sections it owns. */
export const RuntimeConfig = ModelsSection.extend(AgentsSection.shape)
  .extend(ToolsSection.shape)
  .extend(LimitsSection.shape)
  .extend(MemorySection.shape)
  .strict()
  .superRefine((config, context) => {
    for (const issue of checkAgentRoutes(config.agents, config.routes))
      context.addIssue({ code: "custom", path: issue.path, message: issue.message });
  });
export type RuntimeConfig = z.infer<typeof RuntimeConfig>;

/**
 * Loads and validates `AGENT_CONFIG` (or an empty config when unset). The agents' `route`,
 * `variants` and `deepAnalysis` are added to `routes` as agent rules (see `agentRouteRules`).
 */
export function loadRuntimeConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const path = env.AGENT_CONFIG;
  if (!path) return RuntimeConfig.parse({});
  return withAgentRoutes(parseConfig(RuntimeConfig, readConfigFile(path, env), path));
}

function withAgentRoutes(config: RuntimeConfig): RuntimeConfig {
  const { first, last } = agentRouteRules(config.agents, config.routes, config.tiers);
  return { ...config, routes: [...first, ...config.routes, ...last] };
}
