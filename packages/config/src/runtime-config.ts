import type { z } from "zod";
import { AgentsSection } from "./agents.js";
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
  .strict();
export type RuntimeConfig = z.infer<typeof RuntimeConfig>;

/** Loads and validates `AGENT_CONFIG` (or an empty config when unset). */
export function loadRuntimeConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const path = env.AGENT_CONFIG;
  if (!path) return RuntimeConfig.parse({});
  return parseConfig(RuntimeConfig, readConfigFile(path, env), path);
}
