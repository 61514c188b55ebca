/**
 * Test driver of the orchestrator's side of the contract (not part of the build):
 * takes RunRequests from the RUNS stream with the orchestrator's durable consumers,
 * publishes RunEvents on core `run.<id>.events` (or the subject a run names) as a script says, and serves
 * run.get / run.list / run.cancel from what it saw. Nothing here is the real
 * orchestrator; it lets ingress be tested on its own, deterministically.
 */
import type { Bus, ConsumerHandle, ServedEndpoint } from "@agent-runtime/bus";
import { consume } from "@agent-runtime/bus";
import {
  type AssistantMessage,
  Consumers,
  Endpoints,
  QueueGroups,
  RunEvent,
  type RunPriority,
  type RunRecord,
  RunRequest,
  RuntimeError,
  Subjects,
  textOf,
  type WireError,
} from "@agent-runtime/contracts";

type EventBody = RunEvent extends infer E
  ? E extends RunEvent
    ? Omit<E, "runId" | "seq" | "ts">
    : never
  : never;

export interface DriverRun {
  request: RunRequest;
  record: RunRecord;
  emit(event: EventBody): void;
  finish(options?: {
    status?: RunRecord["status"];
    output?: AssistantMessage;
    finishReason?: string;
    error?: WireError;
  }): void;
  cancelled: Promise<string>;
}

export type DriverScript = (run: DriverRun) => Promise<void> | void;

export interface OrchestratorDriver {
  runs: Map<string, DriverRun>;
  cancels: { runId: string; reason: string | undefined }[];
  /** Default script: answers "echo: <last user text>" with usage 10/5. */
  setScript(script: DriverScript): void;
  /** Stops or restarts answering run.get/run.list/run.cancel (to test an absent orchestrator). */
  serveQueries(on: boolean): Promise<void>;
  stop(): Promise<void>;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function lastUserText(request: RunRequest): string {
  const user = [...request.input].reverse().find((message) => message.role === "user");
  return user && "content" in user && user.content != null ? textOf(user.content) : "";
}

export const echoScript: DriverScript = (run) => {
  const text = `echo: ${lastUserText(run.request)}`;
  run.emit({ type: "run-started", agent: run.request.agent, attempt: 1 });
  if (run.request.stream) {
    for (const word of text.split(/(?= )/)) run.emit({ type: "delta", step: 0, content: word });
  }
  run.finish({ output: { role: "assistant", content: text } });
};

export async function startOrchestratorDriver(
  bus: Bus,
  options: { priorities?: RunPriority[] } = {},
): Promise<OrchestratorDriver> {
  const runs = new Map<string, DriverRun>();
  const cancels: OrchestratorDriver["cancels"] = [];
  let script: DriverScript = echoScript;
  await bus.ensureStreams(["RUNS", "RUN_EVENTS"]);

  const start = (request: RunRequest): DriverRun => {
    let seq = 0;
    let resolveCancelled!: (reason: string) => void;
    const now = new Date().toISOString();
    const record: RunRecord = {
      runId: request.runId,
      tenant: request.tenant,
      agent: request.agent,
      status: "running",
      priority: request.priority,
      threadId: request.threadId ?? null,
      userId: request.userId ?? null,
      parentRunId: null,
      steps: 0,
      usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0, totalTokens: 0 },
      costUsd: 0,
      output: null,
      error: null,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
    };
    const run: DriverRun = {
      request,
      record,
      cancelled: new Promise((resolve) => {
        resolveCancelled = resolve;
      }),
      emit(event) {
        bus.publish(request.notify ?? Subjects.runEvents(request.runId), RunEvent, {
          ...event,
          runId: request.runId,
          seq: seq++,
          ts: Date.now(),
        } as RunEvent);
      },
      finish(finish = {}) {
        const usage = { promptTokens: 10, completionTokens: 5, cachedTokens: 0, totalTokens: 15 };
        Object.assign(record, {
          status: finish.status ?? "completed",
          steps: 1,
          usage,
          costUsd: 0.0001,
          output: finish.output ?? null,
          error: finish.error ?? null,
          updatedAt: new Date().toISOString(),
          finishedAt: new Date().toISOString(),
        });
        run.emit({
          type: "run-finished",
          status: record.status,
          ...(finish.output ? { output: finish.output } : {}),
          ...(finish.finishReason ? { finishReason: finish.finishReason } : {}),
          usage,
          costUsd: 0.0001,
          steps: 1,
          ...(finish.error ? { error: finish.error } : {}),
          ...(request.threadId ? { threadId: request.threadId } : {}),
        });
      },
    };
    (run as { resolveCancelled?: (reason: string) => void }).resolveCancelled = resolveCancelled;
    runs.set(request.runId, run);
    return run;
  };

  const consumers: ConsumerHandle[] = [];
  for (const priority of options.priorities ?? ["interactive", "batch"]) {
    consumers.push(
      await consume(bus, {
        stream: "RUNS",
        durable: Consumers.runs(priority),
        filterSubject: priority === "interactive" ? Subjects.runsInteractiveAll : Subjects.runsBatchAll,
        schema: RunRequest,
        concurrency: 64,
        deadLetterOrigin: "runs",
        handler: async (request) => {
          if (runs.has(request.runId)) return; // redelivery
          const run = start(request);
          // scripts run detached so one slow run does not hold the consumer
          void Promise.resolve(script(run)).catch(() => undefined);
        },
      }),
    );
  }

  let served: ServedEndpoint[] = [];
  const serveQueries = async (on: boolean) => {
    for (const endpoint of served) await endpoint.stop();
    served = [];
    if (!on) return;
    const visible = (tenant: string, runId: string) => {
      const run = runs.get(runId);
      return run && run.record.tenant === tenant ? run : undefined;
    };
    const options = { queue: QueueGroups.orchestrator, maxInFlight: 64 };
    served = [
      bus.serve(
        Endpoints.runGet,
        async (request) => ({ run: visible(request.meta.tenant, request.runId)?.record ?? null }),
        options,
      ),
      bus.serve(
        Endpoints.runList,
        async (request) => {
          const all = [...runs.values()]
            .map((run) => run.record)
            .filter(
              (record) =>
                record.tenant === request.meta.tenant &&
                (!request.threadId || record.threadId === request.threadId) &&
                (!request.status || record.status === request.status) &&
                (!request.agent || record.agent === request.agent),
            );
          const offset = Number(request.cursor ?? 0);
          const page = all.slice(offset, offset + request.limit);
          const next = offset + request.limit < all.length ? String(offset + request.limit) : null;
          return { runs: page, nextCursor: next };
        },
        options,
      ),
      bus.serve(
        Endpoints.runCancel,
        async (request) => {
          const run = visible(request.meta.tenant, request.runId);
          if (!run) throw new RuntimeError("not_found", `no run ${request.runId}`, { retryable: false });
          cancels.push({ runId: request.runId, reason: request.reason });
          const active = run.record.status === "running" || run.record.status === "queued";
          if (active) {
            (run as { resolveCancelled?: (reason: string) => void }).resolveCancelled?.(request.reason ?? "");
            run.finish({ status: "cancelled" });
          }
          return { runId: request.runId, status: run.record.status, cancelled: active };
        },
        options,
      ),
    ];
    await bus.flush(); // subscribed on the server before anyone asks
  };
  await serveQueries(true);

  return {
    runs,
    cancels,
    setScript(next) {
      script = next;
    },
    serveQueries,
    stop: async () => {
      await serveQueries(false);
      for (const consumer of consumers) await consumer.stop();
    },
  };
}
