import { type Bus, consume } from "@agent-runtime/bus";
import { isListedAgent } from "@agent-runtime/config";
import {
  Consumers,
  Endpoints,
  type RunPriority,
  RunRequest,
  type RunStatus,
  Subjects,
} from "@agent-runtime/contracts";
import { failpoints, openServiceContext } from "@agent-runtime/service";
import { createLogger, type Logger } from "@agent-runtime/telemetry";
import { type AgentTools, executeRun, type LoopDeps } from "./agent-loop.js";
import type { OrchestratorConfig } from "./config.js";
import { failDeadLetteredRun } from "./dead-letters.js";
import { consumeEvents } from "./event-intake.js";
import { serveRunForget } from "./forget-runs.js";
import { Journal } from "./journal.js";
import { BatchGate } from "./lanes.js";
import { CancelWatch, RunHandedOff } from "./run-control.js";
import { serveRunEndpoints } from "./run-endpoints.js";
import { RunStore } from "./run-store.js";

const TOOL_SPECS_TTL_MS = 30_000;
/** Deliveries of an interactive run: a crash or a hand-off takes one; failures end the run at once. */
const INTERACTIVE_MAX_DELIVER = 5;

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
  const context = await openServiceContext({
    name: "orchestrator",
    config,
    logger,
    streams: ["RUNS", "RUN_EVENTS", "EVENTS", "USAGE", "DEAD_LETTERS", "THREAD_TURNS"],
    postgres: true,
    poolSize: 20,
    redis: false,
  });
  const { bus, pool, metrics } = context;
  const store = await RunStore.create(pool);
  const runsTotal = metrics.counter("runs_total", "finished runs", ["agent", "status", "priority"]);
  const runSeconds = metrics.histogram("run_seconds", "run duration", ["priority"]);
  const runsActive = metrics.gauge("runs_active", "runs in progress in this worker", ["priority"]);
  const handedOff = metrics.counter(
    "runs_handed_off_total",
    "runs given back to the queue by a draining worker",
    ["priority"],
  );

  const toolCache = new Map<string, { expiresAt: number; tools: AgentTools }>();
  // tool specs are asked for once per agent and tenant, then kept briefly in this process
  const toolSpecs = async (
    agent: string,
    names: string[],
    tenant: string,
    channel?: string,
  ): Promise<AgentTools> => {
    const key = `${tenant}:${agent}:${channel ?? ""}`;
    const cached = toolCache.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.tools;
    const reply = await bus.request(
      Endpoints.toolList,
      { tenant, agent, names, ...(channel ? { channel } : {}) },
      { timeoutMs: 5000 },
    );
    const tools = {
      specs: reply.tools.map((tool) => tool.spec),
      sideEffects: reply.tools.some((tool) => tool.sideEffects),
    };
    toolCache.set(key, { expiresAt: Date.now() + TOOL_SPECS_TTL_MS, tools });
    return tools;
  };
  const failpoint = failpoints(config.failpoints);
  const deps: LoopDeps = {
    bus,
    store,
    journal: new Journal(pool, {
      commit: config.journalCommit,
      beforeFlush: () => failpoint("before-journal-flush"),
    }),
    failpoint,
    cancels: new CancelWatch(bus),
    logger,
    agents: config.agents,
    toolSpecs,
    drainGraceMs: config.drainGraceMs,
    runChild: (child, options) => executeRun(deps, child, options),
  };

  // a run this worker already holds, delivered again (its ack timer ran out while the worker was
  // busy): the delivery waits for the run in hand instead of running it a second time
  const held = new Map<string, Promise<RunStatus>>();
  const holdRun = (request: RunRequest, run: () => Promise<RunStatus>): Promise<RunStatus> => {
    const inHand = held.get(request.runId);
    if (inHand) return inHand;
    const running = run().finally(() => held.delete(request.runId));
    held.set(request.runId, running);
    return running;
  };

  // interactive and batch runs on separate consumers with separate concurrency: a batch flood
  // never takes an interactive slot, and while interactive runs go on, batch runs wait for a gap
  // (or, past batchMaxYieldMs, go on one at a time)
  const lanes = new BatchGate(
    config.batchConcurrency,
    config.batchConcurrencyWhileInteractive,
    config.batchMaxYieldMs,
  );
  const runConsumer = (priority: RunPriority) => {
    const maxDeliver = priority === "interactive" ? INTERACTIVE_MAX_DELIVER : config.batchMaxAttempts;
    return consume(bus, {
      stream: "RUNS",
      durable: Consumers.runs(priority),
      filterSubject: priority === "interactive" ? Subjects.runsInteractiveAll : Subjects.runsBatchAll,
      schema: RunRequest,
      concurrency: priority === "interactive" ? config.interactiveConcurrency : config.batchConcurrency,
      maxDeliver,
      backoff:
        priority === "interactive" ? { initialMs: 200, maxMs: 1000 } : { initialMs: 2000, maxMs: 60_000 },
      ackWaitMs: config.ackWaitMs,
      deadLetterOrigin: `runs-${priority}`,
      onDeadLetter: (request, reason, context) => failDeadLetteredRun(deps, request, reason, context.payload),
      handler: async (request, context) => {
        const endLane =
          priority === "interactive"
            ? lanes.interactiveRun()
            : await lanes.batchRun(request.runId, context.signal);
        const started = performance.now();
        runsActive.inc({ priority });
        try {
          const status = await holdRun(request, () =>
            executeRun(deps, request, {
              signal: context.signal,
              deliveryCount: context.deliveryCount,
              finalAttempt: context.deliveryCount >= maxDeliver,
            }),
          );
          // the run's journal entries may have committed before their flush: its message is
          // acknowledged once they are on disk (a crash of Postgres before that runs it again)
          context.ackAfter(deps.journal.flushed());
          runsTotal.inc({ agent: request.agent, status, priority });
          runSeconds.observe({ priority }, (performance.now() - started) / 1000);
        } catch (error) {
          if (error instanceof RunHandedOff) handedOff.inc({ priority });
          throw error;
        } finally {
          runsActive.dec({ priority });
          endLane();
        }
      },
    });
  };
  await runConsumer("interactive");
  await runConsumer("batch");
  await consumeEvents(bus, store, config.agents, metrics);
  serveRunEndpoints(bus, store, config.maxInFlight);
  await serveRunForget({ bus, pool, logger });

  const ops = await context.startOps();
  const listed = Object.keys(config.agents).filter(isListedAgent);
  await context.announce([`agents ${listed.join(", ")}`], {
    agents: listed,
  });
  return { bus, opsPort: ops.port, stop: () => context.stop() };
}
