import type { Bus } from "@agent-runtime/bus";
import type { AgentConfig } from "@agent-runtime/config";
import type { FastifyRequest } from "fastify";
import type { ApiKey, Scope } from "./keys.js";
import type { RunGateway } from "./run-gateway.js";

/** What every route needs. */
export interface RouteDeps {
  bus: Bus;
  runs: RunGateway;
  agents: Record<string, AgentConfig>;
  runTimeoutMs: number;
  authenticate(request: FastifyRequest, scope: Scope): Promise<ApiKey>;
  /** Request rate limits and spend quotas; resolves to a release for the concurrent-run slot. */
  limit(tenant: string, userId: string | undefined, options?: { run?: boolean }): Promise<() => void>;
}
