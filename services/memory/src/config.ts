import { ConfigError, loadRuntimeConfig, type MemorySection } from "@agent-runtime/config";
import { z } from "zod";

const Env = z.object({
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  NATS_PREFIX: z.string().default(""),
  DATABASE_URL: z.string().default("postgres://postgres@127.0.0.1:5432/postgres"),
  DATABASE_SCHEMA: z.string().default("public"),
  REDIS_URL: z.string().default("redis://127.0.0.1:6379"),
  REDIS_PREFIX: z.string().default("ar:"),
  OPS_PORT: z.coerce.number().int().min(0).default(9104),
  LOG_LEVEL: z.string().default("info"),
  MAX_IN_FLIGHT: z.coerce.number().int().positive().default(512),
  JOB_CONCURRENCY: z.coerce.number().int().positive().default(2),
});

export interface MemoryConfig {
  natsUrl: string;
  natsPrefix: string;
  databaseUrl: string;
  databaseSchema: string;
  redisUrl: string;
  redisPrefix: string;
  opsPort: number;
  logLevel: string;
  maxInFlight: number;
  jobConcurrency: number;
  memory: MemorySection["memory"];
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): MemoryConfig {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid environment: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  const e = parsed.data;
  return {
    natsUrl: e.NATS_URL,
    natsPrefix: e.NATS_PREFIX,
    databaseUrl: e.DATABASE_URL,
    databaseSchema: e.DATABASE_SCHEMA,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    opsPort: e.OPS_PORT,
    logLevel: e.LOG_LEVEL,
    maxInFlight: e.MAX_IN_FLIGHT,
    jobConcurrency: e.JOB_CONCURRENCY,
    memory: loadRuntimeConfig(env).memory,
  };
}
