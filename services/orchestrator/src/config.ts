import {
  type AgentConfig,
  type Connections,
  loadRuntimeConfig,
  opsPortOf,
  parseServiceEnv,
  resolveAgents,
} from "@agent-runtime/config";
import { failpointsEnv } from "@agent-runtime/service";
import { z } from "zod";
import { FAILPOINT_NAMES, type Failpoint } from "./failpoints.js";

const OwnEnv = {
  INTERACTIVE_CONCURRENCY: z.coerce.number().int().positive().default(64),
  BATCH_CONCURRENCY: z.coerce.number().int().positive().default(4),
  /** Batch runs in progress at most while any interactive run is (0: batch runs start in the gaps of chat). */
  BATCH_CONCURRENCY_WHILE_INTERACTIVE: z.coerce.number().int().nonnegative().default(0),
  /** How long a batch run waits for chat to pause before one batch run at a time goes on beside it. */
  BATCH_MAX_YIELD_MS: z.coerce.number().int().nonnegative().default(5000),
  RUN_ACK_WAIT_MS: z.coerce.number().int().positive().default(5000),
  BATCH_MAX_ATTEMPTS: z.coerce.number().int().positive().default(4),
  MAX_IN_FLIGHT: z.coerce.number().int().positive().default(256),
  // Kubernetes sends SIGKILL 30 s after SIGTERM (terminationGracePeriodSeconds in infra/k8s): runs
  // get 25 s to finish, the rest is left for handing back what did not and draining the connection
  DRAIN_GRACE_MS: z.coerce.number().int().nonnegative().default(25_000),
  /**
   * `async`: a run's journal writes commit without waiting for the WAL flush and its message is
   * acknowledged once they are flushed; `durable`: every write waits for its flush.
   */
  JOURNAL_COMMIT: z.enum(["async", "durable"]).default("async"),
  /** Fault tests only: crash points (see failpoints.ts). */
  FAILPOINTS: failpointsEnv(FAILPOINT_NAMES),
};

export interface OrchestratorConfig extends Connections {
  opsPort: number;
  interactiveConcurrency: number;
  batchConcurrency: number;
  batchConcurrencyWhileInteractive: number;
  batchMaxYieldMs: number;
  ackWaitMs: number;
  batchMaxAttempts: number;
  maxInFlight: number;
  /** On SIGTERM, how long a step in flight may finish before its run is handed to another worker. */
  drainGraceMs: number;
  journalCommit: "async" | "durable";
  failpoints: Failpoint[];
  agents: Record<string, AgentConfig>;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): OrchestratorConfig {
  const e = parseServiceEnv(OwnEnv, env);
  const runtime = loadRuntimeConfig(env);
  const agents = resolveAgents(runtime.agents);
  return {
    ...e.connections,
    opsPort: opsPortOf("orchestrator", env),
    interactiveConcurrency: e.INTERACTIVE_CONCURRENCY,
    batchConcurrency: e.BATCH_CONCURRENCY,
    batchConcurrencyWhileInteractive: Math.min(e.BATCH_CONCURRENCY_WHILE_INTERACTIVE, e.BATCH_CONCURRENCY),
    batchMaxYieldMs: e.BATCH_MAX_YIELD_MS,
    ackWaitMs: e.RUN_ACK_WAIT_MS,
    batchMaxAttempts: e.BATCH_MAX_ATTEMPTS,
    maxInFlight: e.MAX_IN_FLIGHT,
    drainGraceMs: e.DRAIN_GRACE_MS,
    journalCommit: e.JOURNAL_COMMIT,
    failpoints: e.FAILPOINTS,
    agents,
  };
}
