import { randomUUID } from "node:crypto";
import type { Bus } from "@agent-runtime/bus";
import type { LimitsSection } from "@agent-runtime/config";
import {
  buildRunRequest,
  type ChatMessage,
  Consumers,
  Endpoints,
  type ModelOptions,
  RunEvent,
  type RunFinishedEvent,
  type RunPriority,
  RunRequest,
  RuntimeError,
  Streams,
  Subjects,
} from "@agent-runtime/contracts";

export interface SubmitOptions {
  /** A caller-chosen id (from an idempotency key); a fresh one otherwise. */
  runId?: string;
  tenant: string;
  agent: string;
  input: ChatMessage[];
  threadId?: string;
  /** The thread was made for this run (no earlier turns). */
  newThread?: boolean;
  userId?: string;
  priority: RunPriority;
  stream: boolean;
  source: RunRequest["source"];
  /** The run's deadline from now (sent to the orchestrator). */
  timeoutMs: number;
  /** How long this replica follows the run; defaults to `timeoutMs`. */
  followMs?: number;
  /** Only publish: no subscription to the run's events. */
  detached?: boolean;
  clientTools?: unknown[];
  metadata?: Record<string, string>;
  temperature?: number;
  maxTokens?: number;
  /** The provider model the run is pinned to (the request named a model, not an agent). */
  model?: string;
  modelOptions?: ModelOptions;
  /** The client asked for deep analysis (the run's model steps go to the strong tier). */
  deepAnalysis?: boolean;
  onEvent?: (event: RunEvent) => void;
}

export interface SubmittedRun {
  runId: string;
  /** JetStream already held this run id (a retried request): no new run was started. */
  duplicate: boolean;
  /** Resolves with the run-finished event; rejects on timeout or when closed first. */
  finished: Promise<RunFinishedEvent>;
  /** Stops following the run (the run itself goes on). */
  close(): void;
}

export type QueueBounds = LimitsSection["limits"]["queues"];

const DEPTH_SAMPLE_MS = 250;

/**
 * Sends runs to the orchestrator through JetStream and follows their events.
 * Sheds load when the run queue of a priority is deeper than its bound.
 */
export class RunGateway {
  private depthSample = { at: 0, interactive: 0, batch: 0 };
  private sampling: Promise<void> | undefined;
  /** This replica's own events subject: chat turns send their events here, not to `run.<id>.events`. */
  private readonly replicaSubject = Subjects.replicaEvents(randomUUID().replaceAll("-", ""));
  private readonly listeners = new Map<string, (event: RunEvent) => void>();
  private readonly replicaSubscription: { unsubscribe(): void };

  constructor(
    private readonly bus: Bus,
    private readonly bounds: QueueBounds,
  ) {
    this.replicaSubscription = bus.subscribe(this.replicaSubject, RunEvent, (event) =>
      this.listeners.get(event.runId)?.(event),
    );
  }

  /** Stops listening for this replica's chat turns. */
  close(): void {
    this.replicaSubscription.unsubscribe();
  }

  /**
   * Runs waiting per priority: the pending count of the orchestrator's durable consumer,
   * or, while it does not exist, the messages stored for that priority. Sampled at most
   * every 250 ms: requests in between use the last sample, and requests that find it stale
   * share one new sample.
   */
  async queueDepth(): Promise<{ interactive: number; batch: number }> {
    if (Date.now() - this.depthSample.at >= DEPTH_SAMPLE_MS) {
      this.sampling ??= this.sample().finally(() => {
        this.sampling = undefined;
      });
      // a slow JetStream API does not hold requests: past 500 ms they use the last sample
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.sampling,
        new Promise((resolve) => {
          timer = setTimeout(resolve, 500);
        }),
      ]);
      clearTimeout(timer);
    }
    return this.depthSample;
  }

  private async sample(): Promise<void> {
    const read = async (priority: RunPriority) => {
      // null: the consumer is not there yet; one that cannot be asked counts the stream instead too
      const backlog = await this.bus
        .consumerBacklog(Streams.runs, Consumers.runs(priority))
        .catch(() => null);
      if (backlog) return backlog.pending + backlog.ackPending;
      const subject = priority === "interactive" ? Subjects.runsInteractiveAll : Subjects.runsBatchAll;
      // NATS unreachable counts as empty: publishing will fail with 503 anyway
      const stored = await this.bus.streamSubjectCount(Streams.runs, subject).catch(() => null);
      return stored?.messages ?? 0;
    };
    const [interactive, batch] = await Promise.all([read("interactive"), read("batch")]);
    this.depthSample = { at: Date.now(), interactive, batch };
  }

  /** Throws `rate_limited` with Retry-After when the priority's queue is past its bound (by policy for batch). */
  async admit(priority: RunPriority): Promise<{ depth: number }> {
    const depths = await this.queueDepth();
    const depth = depths[priority];
    if (priority === "interactive") {
      if (depth >= this.bounds.interactiveMaxDepth)
        throw queueFull(priority, depth, this.bounds.interactiveMaxDepth, 1000);
      return { depth };
    }
    const bound =
      this.bounds.batchOverflow === "queue" ? this.bounds.batchHardMaxDepth : this.bounds.batchMaxDepth;
    if (depth >= bound) throw queueFull(priority, depth, bound, 30_000);
    return { depth };
  }

  async submit(options: SubmitOptions): Promise<SubmittedRun> {
    const runId = options.runId ?? `run_${randomUUID()}`;
    const followMs = options.followMs ?? options.timeoutMs;
    let settled = false;
    let resolveFinished!: (event: RunFinishedEvent) => void;
    let rejectFinished!: (error: Error) => void;
    const finished = new Promise<RunFinishedEvent>((resolve, reject) => {
      resolveFinished = (event) => {
        settled = true;
        resolve(event);
      };
      rejectFinished = (error) => {
        settled = true;
        reject(error);
      };
    });
    finished.catch(() => undefined);
    const onEvent = (event: RunEvent) => {
      if (settled) return;
      options.onEvent?.(event);
      if (event.type === "run-finished") resolveFinished(event);
    };
    // a chat turn is followed only here: its events come to this replica's subject (one
    // subscription for all of them); other runs' events are public on `run.<id>.events`.
    // Either way the listener is in place before the run is published, so no event is missed.
    const followHere = !options.detached && options.source === "chat";
    if (followHere) this.listeners.set(runId, onEvent);
    const subscription =
      options.detached || followHere
        ? undefined
        : this.bus.subscribe(Subjects.runEvents(runId), RunEvent, onEvent);
    const timer = options.detached
      ? undefined
      : setTimeout(
          () =>
            rejectFinished(
              new RuntimeError(
                "timeout",
                `run ${runId} did not finish within ${followMs} ms; it may still finish: GET /v1/runs/${runId}`,
                {
                  retryable: false,
                  details: { run_id: runId },
                },
              ),
            ),
          followMs,
        );
    const close = () => {
      clearTimeout(timer);
      subscription?.unsubscribe();
      if (followHere && this.listeners.get(runId) === onEvent) this.listeners.delete(runId);
      if (!settled)
        rejectFinished(new RuntimeError("cancelled", `stopped following run ${runId}`, { retryable: false }));
    };
    finished.then(close, close);
    let duplicate = false;
    try {
      const run = buildRunRequest({
        runId,
        tenant: options.tenant,
        agent: options.agent,
        input: options.input,
        threadId: options.threadId || undefined,
        newThread: options.newThread || undefined,
        notify: followHere ? this.replicaSubject : undefined,
        userId: options.userId || undefined,
        priority: options.priority,
        source: options.source,
        timeoutMs: options.timeoutMs,
        stream: options.stream,
        clientTools: options.clientTools?.length ? options.clientTools : undefined,
        metadata: options.metadata,
        temperature: options.temperature,
        maxTokens: options.maxTokens,
        model: options.model || undefined,
        modelOptions: options.modelOptions,
        deepAnalysis: options.deepAnalysis || undefined,
      });
      const ack = await this.bus.publishDurable(
        Subjects.runs(options.priority, options.tenant),
        RunRequest,
        run,
        {
          msgId: runId,
        },
      );
      // only a run JetStream holds is recorded (a refused publish leaves no queued row behind)
      if (!ack.duplicate) await this.register(run);
      duplicate = ack.duplicate;
    } catch (error) {
      close();
      throw error;
    }
    return { runId, duplicate, finished, close };
  }

  /**
   * A run of the runs API is recorded as `queued` once JetStream holds it and before its id goes
   * back to the client, so it can be looked up, listed and cancelled at once, even behind a batch
   * flood (a chat turn's only follower is its own request). Best effort: without it the run
   * appears when a worker takes it.
   */
  private async register(run: RunRequest): Promise<void> {
    if (run.source === "chat") return;
    await this.bus
      .request(Endpoints.runRegister, {
        meta: {
          v: 1,
          tenant: run.tenant,
          requestId: `${run.runId}:register`,
          runId: run.runId,
          deadline: Date.now() + 2000,
        },
        run,
      })
      .catch(() => undefined);
  }

  /** Asks the orchestrator to cancel a run (best effort, for clients that went away). */
  cancelQuietly(tenant: string, runId: string, reason: string): void {
    void this.bus
      .request(Endpoints.runCancel, {
        meta: { v: 1, tenant, requestId: randomUUID(), runId, deadline: Date.now() + 5000 },
        runId,
        reason,
      })
      .catch(() => undefined);
  }
}

function queueFull(priority: RunPriority, depth: number, max: number, retryAfterMs: number): RuntimeError {
  return new RuntimeError(
    "rate_limited",
    `the ${priority} run queue is full (${depth} waiting); retry shortly`,
    {
      retryAfterMs,
      details: { limit: `${priority} queue depth`, max, depth },
    },
  );
}
