import { AgentConfig, ConfigError, DEFAULT_AGENTS, loadRuntimeConfig } from "@agent-runtime/config";
import { z } from "zod";

const Env = z.object({
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  NATS_PREFIX: z.string().default(""),
  DATABASE_URL: z.string().default("postgres://postgres@127.0.0.1:5432/postgres"),
  DATABASE_SCHEMA: z.string().default("public"),
  OPS_PORT: z.coerce.number().int().min(0).default(9101),
  LOG_LEVEL: z.string().default("info"),
  INTERACTIVE_CONCURRENCY: z.coerce.number().int().positive().default(64),
  BATCH_CONCURRENCY: z.coerce.number().int().positive().default(4),
  RUN_ACK_WAIT_MS: z.coerce.number().int().positive().default(5000),
  BATCH_MAX_ATTEMPTS: z.coerce.number().int().positive().default(4),
  MAX_IN_FLIGHT: z.coerce.number().int().positive().default(256),
});

export interface OrchestratorConfig {
  natsUrl: string;
  natsPrefix: string;
  databaseUrl: string;
  databaseSchema: string;
  opsPort: number;
  logLevel: string;
  interactiveConcurrency: number;
  batchConcurrency: number;
  ackWaitMs: number;
  batchMaxAttempts: number;
  maxInFlight: number;
  agents: Record<string, AgentConfig>;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): OrchestratorConfig {
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
    opsPort: e.OPS_PORT,
    logLevel: e.LOG_LEVEL,
    interactiveConcurrency: e.INTERACTIVE_CONCURRENCY,
    batchConcurrency: e.BATCH_CONCURRENCY,
    ackWaitMs: e.RUN_ACK_WAIT_MS,
    batchMaxAttempts: e.BATCH_MAX_ATTEMPTS,
    maxInFlight: e.MAX_IN_FLIGHT,
    agents,
  };
}
