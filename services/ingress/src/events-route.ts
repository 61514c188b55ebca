import { CloudEvent, RuntimeError, Subjects, subjectToken } from "@agent-runtime/contracts";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { EventBatch } from "./api-schemas.js";
import { parseBody } from "./http-errors.js";
import { setRateHeaders } from "./response-headers.js";
import type { RouteDeps } from "./route-deps.js";

/** CloudEvents' own media types (structured and batched modes); their bodies are JSON. */
const CLOUDEVENTS_TYPES = ["application/cloudevents+json", "application/cloudevents-batch+json"];
const BATCH_TYPE = /^application\/cloudevents-batch\+json\b/i;
const ATTRIBUTE_HEADER = /^ce-([a-z0-9]{1,20})$/;

/** A `ce-*` header value: percent-encoded where it holds what headers cannot (CloudEvents HTTP binding 3.1.3.2). */
function headerValue(value: string | string[]): string {
  const text = Array.isArray(value) ? value.join(",") : value;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * A binary-mode event (CloudEvents HTTP binding): attributes in `ce-*` headers, the data as the
 * body, its media type as `Content-Type`. Nothing is invented: an attribute not sent stays absent
 * (a missing `ce-id` is refused by the schema, not replaced with a random id).
 */
function binaryEvent(request: Pick<FastifyRequest, "headers" | "body">): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const attribute = ATTRIBUTE_HEADER.exec(name)?.[1];
    if (attribute && value !== undefined) event[attribute] = headerValue(value);
  }
  const contentType = request.headers["content-type"];
  if (contentType) event.datacontenttype = contentType;
  if (request.body !== undefined && request.body !== null) event.data = request.body;
  return event;
}

/**
 * The events of a request as CloudEvents JSON, not yet validated: binary mode (`ce-specversion`
 * header), structured mode (`application/cloudevents+json`, or plain `application/json`: the body
 * is the event) or batched mode (`application/cloudevents-batch+json`, or a plain JSON array).
 */
export function receivedEvents(request: Pick<FastifyRequest, "headers" | "body">): {
  events: unknown[];
  batch: boolean;
} {
  if (request.headers["ce-specversion"] !== undefined)
    return { events: [binaryEvent(request)], batch: false };
  const body = request.body;
  if (BATCH_TYPE.test(request.headers["content-type"] ?? "") && !Array.isArray(body)) {
    throw new RuntimeError("validation", "a CloudEvents batch is a JSON array of events", {
      retryable: false,
    });
  }
  return Array.isArray(body) ? { events: body, batch: true } : { events: [body], batch: false };
}

/** `POST /v1/events`: CloudEvents into the EVENTS stream; 202 only once JetStream stored them. */
export function registerEventRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.addContentTypeParser(
    CLOUDEVENTS_TYPES,
    { parseAs: "string" },
    app.getDefaultJsonParser("error", "error"),
  );
  app.post("/v1/events", async (request, reply) => {
    const key = await deps.authenticate(request, "events");
    // one event or a batch; each parsed on its own schema so a 400 names the field (e.g. "[2].id")
    const received = receivedEvents(request);
    const events = received.batch
      ? parseBody(EventBatch, received.events)
      : [parseBody(CloudEvent, received.events[0])];
    setRateHeaders(reply, await deps.limit(key.tenant, undefined));
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
