import {
  AgentConfig,
  ConfigError,
  DEFAULT_AGENTS,
  type LimitsSection,
  loadRuntimeConfig,
} from "@agent-runtime/config";
import { z } from "zod";

const Env = z.object({
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  NATS_PREFIX: z.string().default(""),
  DATABASE_URL: z.string().default("postgres://postgres@127.0.0.1:5432/postgres"),
  DATABASE_SCHEMA: z.string().default("public"),
  REDIS_URL: z.string().default("redis://127.0.0.1:6379"),
  REDIS_PREFIX: z.string().default("ar:"),
  PORT: z.coerce.number().int().min(0).default(8080),
  HOST: z.string().default("0.0.0.0"),
  LOG_LEVEL: z.string().default("info"),
  BOOTSTRAP_API_KEY: z.string().min(8, "BOOTSTRAP_API_KEY must be at least 8 characters").optional(),
  RUN_TIMEOUT_MS: z.coerce.number().int().positive().default(120_000),
  KEY_CACHE_MS: z.coerce.number().int().nonnegative().default(5000),
});

export interface IngressConfig {
  natsUrl: string;
  natsPrefix: string;
  databaseUrl: string;
  databaseSchema: string;
  redisUrl: string;
  redisPrefix: string;
  port: number;
  host: string;
  logLevel: string;
  bootstrapApiKey: string | undefined;
  runTimeoutMs: number;
  keyCacheMs: number;
  limits: LimitsSection["limits"];
  agents: Record<string, AgentConfig>;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): IngressConfig {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid environment: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  const e = parsed.data;
  const runtime = loadRuntimeConfig(env);
  const agents: Record<string, AgentConfig> = {};
  for (const [name, agent] of Object.entries(DEFAULT_AGENTS)) agents[name] = AgentConfig.parse(agent);
  Object.assign(agents, runtime.agents);
  return {
    natsUrl: e.NATS_URL,
    natsPrefix: e.NATS_PREFIX,
    databaseUrl: e.DATABASE_URL,
    databaseSchema: e.DATABASE_SCHEMA,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    bootstrapApiKey: e.BOOTSTRAP_API_KEY,
    runTimeoutMs: e.RUN_TIMEOUT_MS,
    keyCacheMs: e.KEY_CACHE_MS,
    limits: runtime.limits,
    agents,
  };
}
