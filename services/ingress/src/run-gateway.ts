import { randomUUID } from "node:crypto";
import type { Bus } from "@agent-runtime/bus";
import {
  type ChatMessage,
  RunEvent,
  type RunFinishedEvent,
  type RunPriority,
  RunRequest,
  RuntimeError,
  Streams,
  Subjects,
} from "@agent-runtime/contracts";

export interface SubmitOptions {
  tenant: string;
  agent: string;
  input: ChatMessage[];
  threadId?: string;
  userId?: string;
  priority: RunPriority;
  stream: boolean;
  source: RunRequest["source"];
  timeoutMs: number;
  clientTools?: unknown[];
  metadata?: Record<string, string>;
  temperature?: number;
  maxTokens?: number;
  onEvent?: (event: RunEvent) => void;
}

export interface SubmittedRun {
  runId: string;
  /** Resolves with the run-finished event (or rejects on timeout). */
  finished: Promise<RunFinishedEvent>;
  close(): void;
}

/**
 * Sends runs to the orchestrator through JetStream and follows their events.
 * Also sheds load when the run queue is deeper than its bound.
 */
export class RunGateway {
  private depthSample = { at: 0, interactive: 0, batch: 0 };

  constructor(
    private readonly bus: Bus,
    private readonly queueBounds: { interactiveMaxDepth: number; batchMaxDepth: number },
  ) {}

  /** Pending runs per priority, sampled at most every 250 ms. */
  async queueDepth(): Promise<{ interactive: number; batch: number }> {
    const now = Date.now();
    if (now - this.depthSample.at < 250) return this.depthSample;
    this.depthSample.at = now;
    const jsm = await this.bus.jsm();
    const stream = this.bus.streamName(Streams.runs);
    const read = async (durable: string) => {
      try {
        const info = await jsm.consumers.info(stream, durable);
        return info.num_pending + info.num_ack_pending;
      } catch {
        return 0;
      }
    };
    const [interactive, batch] = await Promise.all([
      read("orchestrator-interactive"),
      read("orchestrator-batch"),
    ]);
    this.depthSample = { at: now, interactive, batch };
    return this.depthSample;
  }

  async admit(priority: RunPriority): Promise<void> {
    const depth = await this.queueDepth();
    const bound =
      priority === "interactive" ? this.queueBounds.interactiveMaxDepth : this.queueBounds.batchMaxDepth;
    if (depth[priority] >= bound) {
      throw new RuntimeError(
        "rate_limited",
        `the ${priority} run queue is full (${depth[priority]} waiting); retry shortly`,
        {
          retryAfterMs: priority === "interactive" ? 1000 : 10_000,
          details: { limit: `${priority} queue depth`, max: bound, depth: depth[priority] },
        },
      );
    }
  }

  async submit(options: SubmitOptions): Promise<SubmittedRun> {
    const runId = `run_${randomUUID()}`;
    let resolveFinished!: (event: RunFinishedEvent) => void;
    let rejectFinished!: (error: Error) => void;
    const finished = new Promise<RunFinishedEvent>((resolve, reject) => {
      resolveFinished = resolve;
      rejectFinished = reject;
    });
    finished.catch(() => undefined);
    // subscribe before publishing so no event is missed
    const subscription = this.bus.subscribe(Subjects.runEvents(runId), RunEvent, (event) => {
      options.onEvent?.(event);
      if (event.type === "run-finished") resolveFinished(event);
    });
    const timer = setTimeout(
      () =>
        rejectFinished(
          new RuntimeError("timeout", `run ${runId} did not finish within ${options.timeoutMs} ms`, {
            retryable: true,
          }),
        ),
      options.timeoutMs,
    );
    const close = () => {
      clearTimeout(timer);
      subscription.unsubscribe();
    };
    finished.then(close, close);
    const now = Date.now();
    try {
      await this.bus.publishDurable(
        Subjects.runs(options.priority, options.tenant),
        RunRequest,
        {
          runId,
          tenant: options.tenant,
          agent: options.agent,
          input: options.input,
          ...(options.threadId ? { threadId: options.threadId } : {}),
          ...(options.userId ? { userId: options.userId } : {}),
          priority: options.priority,
          createdAt: now,
          deadline: now + options.timeoutMs,
          stream: options.stream,
          source: options.source,
          ...(options.clientTools?.length ? { clientTools: options.clientTools } : {}),
          ...(options.metadata ? { metadata: options.metadata } : {}),
          ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
          ...(options.maxTokens !== undefined ? { maxTokens: options.maxTokens } : {}),
        },
        { msgId: runId },
      );
    } catch (error) {
      close();
      throw error;
    }
    return { runId, finished, close };
  }
}
