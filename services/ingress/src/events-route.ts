import { CloudEvent, RuntimeError, Subjects, subjectToken } from "@agent-runtime/contracts";
import type { FastifyInstance } from "fastify";
import { EventBatch } from "./api-schemas.js";
import { parseBody } from "./http-errors.js";
import type { RouteDeps } from "./route-deps.js";

/** `POST /v1/events`: CloudEvents into the EVENTS stream; 202 only once JetStream stored them. */
export function registerEventRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.post("/v1/events", async (request, reply) => {
    const key = await deps.authenticate(request, "events");
    // one event or a batch; each parsed on its own schema so a 400 names the field (e.g. "[2].id")
    const events = Array.isArray(request.body)
      ? parseBody(EventBatch, request.body)
      : [parseBody(CloudEvent, request.body)];
    await deps.limit(key.tenant, undefined);
    if (events.length === 0) throw new RuntimeError("validation", "no events given", { retryable: false });
    // published together (one connection keeps their order); 202 only once JetStream stored every one.
    // If any fails the client retries the batch: ids already stored are dropped as duplicates.
    const accepted = await Promise.all(
      events.map(async (event) => {
        // the tenant comes from the key, never from the client
        const stored = { ...event, tenant: key.tenant };
        const ack = await deps.bus.publishDurable(
          Subjects.events(subjectToken(event.source), subjectToken(event.type)),
          CloudEvent,
          stored,
          // scoped by tenant so one tenant's ids can never suppress another's events
          { msgId: `${key.tenant}:${event.id}` },
        );
        return { id: event.id, duplicate: ack.duplicate, seq: ack.seq };
      }),
    );
    return reply.code(202).send({ accepted });
  });
}
