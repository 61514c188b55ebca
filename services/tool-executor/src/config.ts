import {
  type Connections,
  loadRuntimeConfig,
  parseServiceEnv,
  type ToolsSection,
} from "@agent-runtime/config";
import { z } from "zod";

const OwnEnv = {
  OPS_PORT: z.coerce.number().int().min(0).default(9103),
  MAX_IN_FLIGHT: z.coerce.number().int().positive().default(512),
  IDEMPOTENCY_TTL_SECONDS: z.coerce
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600),
};

export interface ToolExecutorConfig extends Connections {
  opsPort: number;
  maxInFlight: number;
  idempotencyTtlSeconds: number;
  tools: ToolsSection["tools"];
  env: NodeJS.ProcessEnv;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ToolExecutorConfig {
  const e = parseServiceEnv(OwnEnv, env);
  return {
    ...e.connections,
    opsPort: e.OPS_PORT,
    maxInFlight: e.MAX_IN_FLIGHT,
    idempotencyTtlSeconds: e.IDEMPOTENCY_TTL_SECONDS,
    tools: loadRuntimeConfig(env).tools,
    env,
  };
}
