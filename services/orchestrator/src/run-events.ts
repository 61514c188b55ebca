import type { Bus } from "@agent-runtime/bus";
import { RunEvent, Streams, Subjects, type TokenUsage } from "@agent-runtime/contracts";
import { z } from "zod";

export const emptyUsage = (): TokenUsage => ({
  promptTokens: 0,
  completionTokens: 0,
  cachedTokens: 0,
  totalTokens: 0,
});

export function sumUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    cachedTokens: a.cachedTokens + b.cachedTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  };
}

export function addUsage(total: TokenUsage, usage: TokenUsage): void {
  total.promptTokens += usage.promptTokens;
  total.completionTokens += usage.completionTokens;
  total.cachedTokens += usage.cachedTokens;
  total.totalTokens += usage.totalTokens;
}

/** A run event before the publisher stamps it with the run id, sequence number and time. */
export type RunEventBody = RunEvent extends infer E
  ? E extends RunEvent
    ? Omit<E, "runId" | "seq" | "ts">
    : never
  : never;

/**
 * Publishes one run's events in order on `run.<id>.events` (core NATS; the RUN_EVENTS stream keeps
 * them for replay), or on the subject the run names as its listener's. `seq` is informational: each attempt starts its own range.
 */
export class EventPublisher {
  private seq: number;
  constructor(
    private readonly bus: Bus,
    private readonly runId: string,
    attempt: number,
    /** Only these event types are published (a chat turn's client listens for its deltas and its end). */
    private readonly only?: ReadonlySet<RunEvent["type"]>,
    /** Where they go: `run.<id>.events` (kept in RUN_EVENTS for replay) unless the run names its listener. */
    private readonly subject = Subjects.runEvents(runId),
  ) {
    this.seq = (attempt - 1) * 10_000;
  }

  /**
   * The events a run's listeners use: a chat turn's only listener is its chat completion, on the
   * ingress replica the run names (`notify`); other runs publish every event for anyone to follow.
   */
  static forRun(
    bus: Bus,
    request: { runId: string; source: string; notify?: string | undefined },
    attempt: number,
  ): EventPublisher {
    return new EventPublisher(
      bus,
      request.runId,
      attempt,
      request.source === "chat" ? CHAT_EVENTS : undefined,
      request.notify ?? Subjects.runEvents(request.runId),
    );
  }

  emit(event: RunEventBody): void {
    if (this.only && !this.only.has(event.type)) return;
    this.bus.publish(this.subject, RunEvent, {
      ...event,
      runId: this.runId,
      seq: this.seq++,
      ts: Date.now(),
    } as RunEvent);
  }
}

const CHAT_EVENTS: ReadonlySet<RunEvent["type"]> = new Set(["delta", "run-finished"]);

const LastEvent = z.object({ type: z.string() });

/**
 * Whether the run's `run-finished` event is already out (the last event the RUN_EVENTS stream holds
 * for it). A run redelivered after it finished only repeats the event when it was never sent, so a
 * client sees exactly one. Unknown (stream unreachable) counts as not sent.
 */
export async function finishedEventSent(bus: Bus, runId: string): Promise<boolean> {
  try {
    const last = await bus.lastStreamMessage(Streams.runEvents, Subjects.runEvents(runId));
    if (!last) return false;
    const parsed = LastEvent.safeParse(last.json());
    return parsed.success && parsed.data.type === "run-finished";
  } catch {
    return false;
  }
}
