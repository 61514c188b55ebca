import {
  type Connections,
  loadRuntimeConfig,
  type MemorySection,
  opsPortOf,
  parseServiceEnv,
} from "@agent-runtime/config";
import { z } from "zod";

const OwnEnv = {
  MAX_IN_FLIGHT: z.coerce.number().int().positive().default(512),
  JOB_CONCURRENCY: z.coerce.number().int().positive().default(2),
  /** Journaled turns stored in their threads at once (per replica). */
  TURN_CONCURRENCY: z.coerce.number().int().positive().default(16),
  /** First retry delay of a failed memory job; doubles per delivery up to a minute. */
  JOB_RETRY_MS: z.coerce.number().int().positive().default(2000),
  DATABASE_POOL_SIZE: z.coerce.number().int().positive().default(20),
};

export interface MemoryConfig extends Connections {
  opsPort: number;
  maxInFlight: number;
  jobConcurrency: number;
  turnConcurrency: number;
  jobRetryMs: number;
  databasePoolSize: number;
  memory: MemorySection["memory"];
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): MemoryConfig {
  const e = parseServiceEnv(OwnEnv, env);
  return {
    ...e.connections,
    opsPort: opsPortOf("memory", env),
    maxInFlight: e.MAX_IN_FLIGHT,
    jobConcurrency: e.JOB_CONCURRENCY,
    turnConcurrency: e.TURN_CONCURRENCY,
    jobRetryMs: e.JOB_RETRY_MS,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    memory: loadRuntimeConfig(env).memory,
  };
}
