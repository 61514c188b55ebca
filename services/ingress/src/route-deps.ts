import type { Bus } from "@agent-runtime/bus";
import type { AgentConfig } from "@agent-runtime/config";
import type { FastifyRequest } from "fastify";
import type { ApiKey, Scope } from "./keys.js";
import type { Release } from "./rate-limits.js";
import type { RunGateway } from "./run-gateway.js";
import type { SseStreams } from "./sse.js";

/** What every route needs. */
export interface RouteDeps {
  bus: Bus;
  runs: RunGateway;
  sse: SseStreams;
  agents: Record<string, AgentConfig>;
  runTimeoutMs: number;
  authenticate(request: FastifyRequest, scope: Scope): Promise<ApiKey>;
  /**
   * Request rate limits and spend quotas of the tenant and user; with `runLeaseMs`
   * also a concurrent-run lease, which the returned function gives back.
   */
  limit(tenant: string, userId: string | undefined, options?: { runLeaseMs?: number }): Promise<Release>;
  /** Renames a forgotten user in the usage totals and rollups ingress keeps (see `anonymizeUserUsage`). */
  forgetUsage(tenant: string, userId: string): Promise<number>;
}
