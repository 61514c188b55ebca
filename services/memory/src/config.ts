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
  /**
   * Journaled turns being stored in their threads at once (per replica); each may wait
   * TURN_GATHER_MS for others to share its write.
   */
  TURN_CONCURRENCY: z.coerce.number().int().positive().default(64),
  /** While journaled turns arrive less than 5 ms apart, how long each waits for others to share its statement (0: never). */
  TURN_GATHER_MS: z.coerce.number().int().min(0).max(1000).default(20),
  /** First retry delay of a failed memory job; doubles per delivery up to a minute. */
  JOB_RETRY_MS: z.coerce.number().int().positive().default(2000),
  DATABASE_POOL_SIZE: z.coerce.number().int().positive().default(20),
};

export interface MemoryConfig extends Connections {
  opsPort: number;
  maxInFlight: number;
  jobConcurrency: number;
  turnConcurrency: number;
  turnGatherMs: number;
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
    turnGatherMs: e.TURN_GATHER_MS,
    jobRetryMs: e.JOB_RETRY_MS,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    memory: loadRuntimeConfig(env).memory,
  };
}
