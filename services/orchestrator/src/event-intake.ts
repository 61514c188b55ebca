import { randomUUID } from "node:crypto";
import { type Bus, type ConsumerHandle, consume } from "@agent-runtime/bus";
import type { AgentConfig } from "@agent-runtime/config";
import {
  buildRunRequest,
  CloudEvent,
  Consumers,
  RunRequest,
  Subjects,
  TenantId,
} from "@agent-runtime/contracts";
import type { Metrics } from "@agent-runtime/telemetry";
import type { RunStore } from "./run-store.js";
import { matchingAgents, renderEvent } from "./triggers.js";

/** How long a triggered batch run may wait in the queue before it is abandoned. */
const TRIGGERED_RUN_QUEUE_MS = 24 * 3600_000;

/**
 * Consumes CloudEvents from the EVENTS stream: each agent whose triggers match the event type gets
 * one batch run, deduplicated by (tenant, event id, agent) in Postgres — beyond the JetStream
 * duplicate window — and by the message id `event:<tenant>:<event id>:<agent>` within it. An event
 * no agent wants is acknowledged and counted; an invalid one is dead-lettered with the reason.
 */
export function consumeEvents(
  bus: Bus,
  store: RunStore,
  agents: Record<string, AgentConfig>,
  metrics: Metrics,
): Promise<ConsumerHandle> {
  const eventsTotal = metrics.counter("events_total", "events consumed, by outcome", ["outcome"]);
  return consume(bus, {
    stream: "EVENTS",
    durable: Consumers.events,
    schema: CloudEvent,
    concurrency: 8,
    // an accepted event is kept trying through a store outage (about 25 minutes of retries, up to a
    // minute apart) before it is dead-lettered; data it cannot use is dead-lettered at once
    maxDeliver: 30,
    backoff: { initialMs: 1000, maxMs: 60_000 },
    deadLetterOrigin: "events",
    handler: async (event) => {
      // the tenant is the extension attribute ingress sets from the API key
      const stamped = TenantId.safeParse(event.tenant);
      const tenant = stamped.success ? stamped.data : "default";
      const matched = matchingAgents(agents, event.type, tenant);
      if (matched.length === 0) {
        eventsTotal.inc({ outcome: "no_trigger" });
        return;
      }
      for (const agent of matched) {
        const claim = await store.claimEvent(tenant, event.id, agent, `run_${randomUUID()}`);
        if (claim.published) {
          eventsTotal.inc({ outcome: "duplicate" });
          continue;
        }
        const run = RunRequest.parse(
          buildRunRequest({
            runId: claim.runId,
            tenant,
            agent,
            input: [{ role: "user", content: renderEvent(event) }],
            priority: "batch",
            source: "event",
            timeoutMs: TRIGGERED_RUN_QUEUE_MS + agents[agent]!.timeBudgetMs,
            eventId: event.id,
            metadata: { eventType: event.type.slice(0, 200), eventSource: event.source.slice(0, 200) },
          }),
        );
        const stored = await bus.publishDurable(Subjects.runs("batch", tenant), RunRequest, run, {
          msgId: `event:${tenant}:${event.id}:${agent}`,
        });
        // visible as queued once JetStream holds it (a worker that took it already is left alone);
        // a publish JetStream dropped as a duplicate carries another createdAt: the first one registers
        if (!stored.duplicate) await store.register(run);
        await store.eventPublished(tenant, event.id, agent);
        eventsTotal.inc({ outcome: "run_started" });
      }
    },
  });
}
