import {
  type AgentConfig,
  ConfigError,
  type Connections,
  type LimitsSection,
  loadRuntimeConfig,
  opsPortOf,
  parseServiceEnv,
  resolveAgents,
} from "@agent-runtime/config";
import { z } from "zod";

const OwnEnv = {
  PORT: z.coerce.number().int().min(0).default(8080),
  HOST: z.string().default("0.0.0.0"),
  BOOTSTRAP_API_KEY: z.string().min(8, "BOOTSTRAP_API_KEY must be at least 8 characters").optional(),
  RUN_TIMEOUT_MS: z.coerce.number().int().positive().default(120_000),
  KEY_CACHE_MS: z.coerce.number().int().nonnegative().default(5000),
  /**
   * Browser origins allowed to call the API (CORS), comma-separated, or `*` for any (development).
   * Empty (the default): no CORS headers, browsers on other origins are refused.
   */
  CORS_ORIGINS: z.string().default(""),
};

export interface IngressConfig extends Connections {
  port: number;
  opsPort: number;
  host: string;
  bootstrapApiKey: string | undefined;
  runTimeoutMs: number;
  keyCacheMs: number;
  limits: LimitsSection["limits"];
  agents: Record<string, AgentConfig>;
  /** The agent a chat request that names no model runs (a model name runs the gateway agent). */
  defaultAgent: string;
  /** Allowed CORS origins (`*` for any); empty: CORS off. */
  corsOrigins: string[];
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): IngressConfig {
  const e = parseServiceEnv(OwnEnv, env);
  const runtime = loadRuntimeConfig(env);
  const agents = resolveAgents(runtime.agents);
  if (!agents[runtime.defaultAgent])
    throw new ConfigError(`invalid config: defaultAgent: no agent named "${runtime.defaultAgent}"`);
  return {
    ...e.connections,
    port: e.PORT,
    opsPort: opsPortOf("ingress", env),
    host: e.HOST,
    bootstrapApiKey: e.BOOTSTRAP_API_KEY,
    runTimeoutMs: e.RUN_TIMEOUT_MS,
    keyCacheMs: e.KEY_CACHE_MS,
    limits: runtime.limits,
    agents,
    defaultAgent: runtime.defaultAgent,
    corsOrigins: e.CORS_ORIGINS.split(",")
      .map((origin) => origin.trim())
      .filter((origin) => origin.length > 0),
  };
}
