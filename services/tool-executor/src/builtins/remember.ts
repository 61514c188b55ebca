import { createHash } from "node:crypto";
import type { Bus } from "@agent-runtime/bus";
import { Endpoints, memoryDocumentId, RuntimeError } from "@agent-runtime/contracts";
import { defineTool } from "@agent-runtime/tools";
import { z } from "zod";
import { asInfrastructure } from "../infrastructure.js";

/**
 * `remember`: stores a fact or note in the caller's long-term memory, as `POST /v1/memories` would
 * with the run's user (listed by `GET /v1/memories?user=`, found by `memory_search` and retrieval,
 * removed by forgetting the user). Only for a run with a user: a memory is never written to the
 * tenant's shared memories on someone's behalf. It acts on the world (the memory stays), so each
 * call is made once under its idempotency key; the memory's id is derived from the run and call,
 * so a call made again stores the same memory, not a second one.
 */
export function createRemember(bus: Bus) {
  return defineTool({
    name: "remember",
    description:
      "Saves a fact or note about the user (a preference, a detail they shared, a decision) to their long-term memory so later conversations can use it.",
    input: z.object({
      text: z.string().trim().min(1).max(4000),
      kind: z.enum(["fact", "note", "profile"]).optional(),
    }),
    output: z.object({ id: z.string(), remembered: z.literal(true) }),
    options: { timeoutMs: 10_000, maxConcurrency: 64, sideEffects: true, personal: true },
    handler: async ({ text, kind }, context) => {
      if (!context.userId)
        throw new RuntimeError(
          "forbidden",
          "there is no user to remember this for (the request named no user)",
          {
            retryable: false,
          },
        );
      const id = `mem_${createHash("sha256")
        .update(`${context.runId ?? ""}:${context.callId}:${text}`)
        .digest("hex")
        .slice(0, 24)}`;
      await bus
        .request(Endpoints.memoryRemember, {
          meta: {
            v: 1,
            tenant: context.tenant,
            requestId: `${context.callId}:remember`,
            ...(context.runId ? { runId: context.runId } : {}),
            userId: context.userId,
            ...(context.agent ? { agent: context.agent } : {}),
            deadline: context.deadline,
          },
          documentId: memoryDocumentId(context.userId, id),
          userId: context.userId,
          kind: kind ?? "fact",
          text,
          metadata: { source: "remember", ...(context.agent ? { agent: context.agent } : {}) },
        })
        .catch((error: unknown) => {
          throw asInfrastructure(error, "memory");
        });
      return { id, remembered: true as const };
    },
  });
}
