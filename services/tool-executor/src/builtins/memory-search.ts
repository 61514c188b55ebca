import type { Bus } from "@agent-runtime/bus";
import { Endpoints, type MemoryScope } from "@agent-runtime/contracts";
import { defineTool } from "@agent-runtime/tools";
import { z } from "zod";
import { asInfrastructure } from "../infrastructure.js";

/**
 * `memory_search`: the caller's own memories plus the tenant's shared ones, or every memory of the
 * tenant for an agent configured with `memory.scope: tenant` (`scopeOf` reads the agent's config).
 * Memory being briefly unavailable is not a result the model reads: the call is tried again.
 */
export function createMemorySearch(bus: Bus, scopeOf: (agent: string | undefined) => MemoryScope) {
  return defineTool({
    name: "memory_search",
    description:
      "Searches the user's and tenant's long-term memory and documents for passages relevant to a query.",
    input: z.object({
      query: z.string().min(1).max(2000),
      limit: z.number().int().min(1).max(20).optional(),
    }),
    output: z.object({ hits: z.array(z.object({ text: z.string(), score: z.number(), kind: z.string() })) }),
    options: { timeoutMs: 5000, cacheTtlSeconds: 0, maxConcurrency: 64, personal: true },
    handler: async ({ query, limit }, context) => {
      const reply = await bus
        .request(Endpoints.memorySearch, {
          meta: {
            v: 1,
            tenant: context.tenant,
            requestId: `${context.callId}:search`,
            ...(context.runId ? { runId: context.runId } : {}),
            ...(context.userId ? { userId: context.userId } : {}),
            ...(context.agent ? { agent: context.agent } : {}),
            deadline: context.deadline,
          },
          query,
          ...(context.userId ? { userId: context.userId } : {}),
          scope: scopeOf(context.agent),
          limit: limit ?? 5,
        })
        .catch((error: unknown) => {
          throw asInfrastructure(error, "memory");
        });
      return { hits: reply.hits.map((hit) => ({ text: hit.text, score: hit.score, kind: hit.kind })) };
    },
  });
}
