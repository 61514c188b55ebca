import { CloudEvent, RuntimeError, Subjects, subjectToken } from "@agent-runtime/contracts";
import type { FastifyInstance } from "fastify";
import { EventsBody } from "./api-schemas.js";
import { parseBody } from "./http-errors.js";
import type { RouteDeps } from "./route-deps.js";

/** `POST /v1/events`: CloudEvents into the EVENTS stream; 202 only once JetStream stored them. */
export function registerEventRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.post("/v1/events", async (request, reply) => {
    const key = await deps.authenticate(request, "events");
    const body = parseBody(EventsBody, request.body);
    const events = Array.isArray(body) ? body : [body];
    await deps.limit(key.tenant, undefined);
    const accepted = [];
    for (const event of events) {
      // the tenant comes from the key, never from the client
      const stored = { ...event, tenant: key.tenant };
      const ack = await deps.bus.publishDurable(
        Subjects.events(subjectToken(event.source), subjectToken(event.type)),
        CloudEvent,
        stored,
        { msgId: `${key.tenant}:${event.id}` },
      );
      accepted.push({ id: event.id, duplicate: ack.duplicate, seq: ack.seq });
    }
    if (accepted.length === 0) throw new RuntimeError("validation", "no events given", { retryable: false });
    return reply.code(202).send({ accepted });
  });
}
