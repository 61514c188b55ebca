import { randomUUID } from "node:crypto";
import { type Bus, connectBus, consume } from "@agent-runtime/bus";
import {
  CloudEvent,
  Endpoints,
  QueueGroups,
  RunRequest,
  RuntimeError,
  Subjects,
  type ToolSpec,
} from "@agent-runtime/contracts";
import { createPool } from "@agent-runtime/stores";
import { createLogger, createMetrics, type Logger, startOpsServer } from "@agent-runtime/telemetry";
import { z } from "zod";
import { executeRun } from "./agent-loop.js";
import type { OrchestratorConfig } from "./config.js";
import { RunStore } from "./run-store.js";
import { matchingAgents, renderEvent } from "./triggers.js";

export interface RunningOrchestrator {
  bus: Bus;
  opsPort: number;
  stop(): Promise<void>;
}

export async function startOrchestrator(
  config: OrchestratorConfig,
  options: { logger?: Logger } = {},
): Promise<RunningOrchestrator> {
  const logger = options.logger ?? createLogger({ service: "orchestrator", level: config.logLevel });
  const bus = await connectBus({
    name: "orchestrator",
    url: config.natsUrl,
    prefix: config.natsPrefix,
    logger,
  });
  await bus.ensureStreams(["RUNS", "RUN_EVENTS", "EVENTS", "USAGE", "DEAD_LETTERS"]);
  const pool = await createPool({
    url: config.databaseUrl,
    schema: config.databaseSchema,
    applicationName: "orchestrator",
    max: 20,
  });
  const store = await RunStore.create(pool);
  const metrics = createMetrics("orchestrator");
  const runsTotal = metrics.counter("runs_total", "finished runs", ["agent", "status", "priority"]);
  const runSeconds = metrics.histogram("run_seconds", "run duration", ["priority"]);
  const eventsTotal = metrics.counter("events_total", "events consumed", ["outcome"]);

  const toolCache = new Map<string, { expiresAt: number; specs: ToolSpec[] }>();
  const toolSpecs = async (agent: string, names: string[], tenant: string): Promise<ToolSpec[]> => {
    const key = `${tenant}:${agent}`;
    const cached = toolCache.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.specs;
    const reply = await bus.request(Endpoints.toolList, { tenant, agent, names }, { timeoutMs: 5000 });
    const specs = reply.tools.map((tool) => tool.spec);
    toolCache.set(key, { expiresAt: Date.now() + 30_000, specs });
    return specs;
  };
  const deps = { bus, store, logger, agents: config.agents, toolSpecs };

  const runConsumer = (priority: "interactive" | "batch") =>
    consume(bus, {
      stream: "RUNS",
      durable: `orchestrator-${priority}`,
      filterSubject: priority === "interactive" ? Subjects.runsInteractiveAll : Subjects.runsBatchAll,
      schema: RunRequest,
      concurrency: priority === "interactive" ? config.interactiveConcurrency : config.batchConcurrency,
      maxDeliver: priority === "interactive" ? 3 : config.batchMaxAttempts,
      backoff:
        priority === "interactive" ? { initialMs: 200, maxMs: 1000 } : { initialMs: 2000, maxMs: 60_000 },
      ackWaitMs: config.ackWaitMs,
      deadLetterOrigin: `runs-${priority}`,
      handler: async (request, context) => {
        const started = performance.now();
        const status = await executeRun(deps, request, {
          signal: context.signal,
          deliveryCount: context.deliveryCount,
          finalAttempt: context.deliveryCount >= (priority === "interactive" ? 3 : config.batchMaxAttempts),
        });
        runsTotal.inc({ agent: request.agent, status, priority });
        runSeconds.observe({ priority }, (performance.now() - started) / 1000);
      },
    });
  await runConsumer("interactive");
  await runConsumer("batch");

  await consume(bus, {
    stream: "EVENTS",
    durable: "orchestrator-events",
    schema: CloudEvent,
    concurrency: 8,
    deadLetterOrigin: "events",
    handler: async (event) => {
      const tenant =
        typeof event.tenant === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(event.tenant)
          ? event.tenant
          : "default";
      const agents = matchingAgents(config.agents, event.type, tenant);
      if (agents.length === 0) {
        eventsTotal.inc({ outcome: "no_trigger" });
        return;
      }
      for (const agent of agents) {
        const runId = `run_${randomUUID()}`;
        if (!(await store.claimEvent(tenant, event.id, agent, runId))) {
          eventsTotal.inc({ outcome: "duplicate" });
          continue;
        }
        await bus.publishDurable(
          Subjects.runs("batch", tenant),
          RunRequest,
          {
            runId,
            tenant,
            agent,
            input: [{ role: "user", content: renderEvent(event) }],
            priority: "batch",
            createdAt: Date.now(),
            deadline: Date.now() + config.agents[agent]!.timeBudgetMs + 3_600_000,
            source: "event",
            eventId: event.id,
          },
          { msgId: `event:${tenant}:${event.id}:${agent}` },
        );
        eventsTotal.inc({ outcome: "run_started" });
      }
    },
  });

  const serve = { queue: QueueGroups.orchestrator, maxInFlight: config.maxInFlight };
  bus.serve(
    Endpoints.runGet,
    async (request) => ({ run: await store.get(request.meta.tenant, request.runId) }),
    serve,
  );
  bus.serve(
    Endpoints.runList,
    (request) =>
      store.list(request.meta.tenant, {
        limit: request.limit,
        ...(request.threadId ? { threadId: request.threadId } : {}),
        ...(request.status ? { status: request.status } : {}),
        ...(request.agent ? { agent: request.agent } : {}),
        ...(request.cursor ? { cursor: request.cursor } : {}),
      }),
    serve,
  );
  bus.serve(
    Endpoints.runCancel,
    async (request) => {
      const result = await store.cancel(request.meta.tenant, request.runId);
      if (!result.found) throw new RuntimeError("not_found", `no run ${request.runId}`);
      if (result.cancelled)
        bus.publish(Subjects.runCancelled(request.runId), z.object({ reason: z.string() }), {
          reason: request.reason ?? "cancelled",
        });
      return { runId: request.runId, status: result.status, cancelled: result.cancelled };
    },
    serve,
  );

  const ops = await startOpsServer({
    port: config.opsPort,
    metrics,
    logger,
    isDraining: () => bus.isDraining,
    checks: {
      nats: () => bus.ping(),
      postgres: async () => {
        await pool.query("SELECT 1");
      },
    },
  });
  logger.info({ agents: Object.keys(config.agents), opsPort: ops.port }, "orchestrator ready");
  return {
    bus,
    opsPort: ops.port,
    stop: async () => {
      await bus.drain();
      await ops.close();
      await pool.end();
    },
  };
}
