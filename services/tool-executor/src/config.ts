import {
  type AgentConfig,
  type Connections,
  loadRuntimeConfig,
  opsPortOf,
  parseServiceEnv,
  resolveAgents,
  type ToolsSection,
} from "@agent-runtime/config";
import { failpointsEnv } from "@agent-runtime/service";
import { z } from "zod";
import { FAILPOINT_NAMES, type Failpoint } from "./failpoints.js";

const OwnEnv = {
  MAX_IN_FLIGHT: z.coerce.number().int().positive().default(512),
  IDEMPOTENCY_TTL_SECONDS: z.coerce
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600),
  /** How often a side-effecting call's claim is renewed while its executor lives (see records.ts). */
  CLAIM_HEARTBEAT_MS: z.coerce.number().int().min(100).max(60_000).default(1000),
  /** Share of MAX_IN_FLIGHT and of each tool's maxConcurrency batch calls may not take. */
  INTERACTIVE_RESERVE: z.coerce.number().min(0).max(1).default(0.25),
  /** Fault tests only: crash points (see failpoints.ts). */
  FAILPOINTS: failpointsEnv(FAILPOINT_NAMES),
};

export interface ToolExecutorConfig extends Connections {
  opsPort: number;
  maxInFlight: number;
  idempotencyTtlSeconds: number;
  claimHeartbeatMs: number;
  /** Lanes (`meta.priority`): the share of every bound kept for interactive calls. */
  interactiveReserve: number;
  tools: ToolsSection["tools"];
  /** The agents (built-ins read their settings, e.g. `memory_search` its agent's memory scope). */
  agents: Record<string, AgentConfig>;
  env: NodeJS.ProcessEnv;
  failpoints: Failpoint[];
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ToolExecutorConfig {
  const e = parseServiceEnv(OwnEnv, env);
  const runtime = loadRuntimeConfig(env);
  return {
    ...e.connections,
    opsPort: opsPortOf("tool-executor", env),
    maxInFlight: e.MAX_IN_FLIGHT,
    idempotencyTtlSeconds: e.IDEMPOTENCY_TTL_SECONDS,
    claimHeartbeatMs: e.CLAIM_HEARTBEAT_MS,
    interactiveReserve: e.INTERACTIVE_RESERVE,
    tools: runtime.tools,
    agents: resolveAgents(runtime.agents),
    env,
    failpoints: e.FAILPOINTS,
  };
}
