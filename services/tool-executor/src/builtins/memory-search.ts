import type { Bus } from "@agent-runtime/bus";
import { Endpoints } from "@agent-runtime/contracts";
import { defineTool } from "@agent-runtime/tools";
import { z } from "zod";

export function createMemorySearch(bus: Bus) {
  return defineTool({
    name: "memory_search",
    description:
      "Searches the user's and tenant's long-term memory and documents for passages relevant to a query.",
    input: z.object({
      query: z.string().min(1).max(2000),
      limit: z.number().int().min(1).max(20).optional(),
    }),
    output: z.object({ hits: z.array(z.object({ text: z.string(), score: z.number(), kind: z.string() })) }),
    options: { timeoutMs: 5000, cacheTtlSeconds: 0, maxConcurrency: 64 },
    handler: async ({ query, limit }, context) => {
      const reply = await bus.request(Endpoints.memorySearch, {
        meta: {
          v: 1,
          tenant: context.tenant,
          requestId: `${context.callId}:search`,
          ...(context.runId ? { runId: context.runId } : {}),
          ...(context.userId ? { userId: context.userId } : {}),
          deadline: context.deadline,
        },
        query,
        ...(context.userId ? { userId: context.userId } : {}),
        limit: limit ?? 5,
      });
      return { hits: reply.hits.map((hit) => ({ text: hit.text, score: hit.score, kind: hit.kind })) };
    },
  });
}
