import { RuntimeError } from "@agent-runtime/contracts";
import type { Msg, MsgHdrs, NatsConnection } from "@nats-io/nats-core";
import { isRefusal } from "./keep-alive.js";
import type { ReplyInbox, ReplySubject } from "./reply-inbox.js";

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

/** How one request is sent and, when that is safe, sent again. */
export interface ExchangePlan {
  /** Unprefixed, for messages. */
  subject: string;
  wireSubject: string;
  data: Uint8Array;
  headers: MsgHdrs;
  /** Epoch ms; nothing is waited for past it. */
  deadline: number;
  /** May the request be re-sent when its outcome is unknown (replica silent, attempt timed out)? */
  retrySafe: boolean;
  /** Attempts in all, the first included. */
  maxAttempts: number;
  attemptTimeoutMs: number | undefined;
  /** No reply and no keep-alive for this long: the replica is presumed dead. 0: never presumed. */
  silenceMs: number;
  backoff: Backoff;
  signal: AbortSignal | undefined;
  /** Asked before each re-send; `false` gives up with the last failure. */
  beforeRetry: ((attempt: number, cause: RuntimeError) => boolean | undefined) | undefined;
}

type Outcome =
  | { kind: "reply"; msg: Msg }
  | { kind: "no-responders" }
  | { kind: "silent" }
  | { kind: "attempt-timeout" }
  | { kind: "deadline" }
  | { kind: "closed" }
  | { kind: "aborted" }
  | { kind: "resume" };

const ATTEMPT_TIMEOUT: Outcome = { kind: "attempt-timeout" };
const DEADLINE: Outcome = { kind: "deadline" };
const RESUME: Outcome = { kind: "resume" };

/** Jittered exponential delay before attempt `attempt + 1`: between half and all of initial·2^(attempt-1), capped. */
export function retryDelay(attempt: number, backoff: Backoff): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * One request and its attempts. Every attempt uses the same reply subject, so
 * whichever attempt answers first is the answer (an attempt given up for being
 * slow may still win). Keep-alives on the reply subject prove the serving
 * replica alive; one timer per wait, re-armed only when it fires.
 */
class Exchange {
  private readonly reply: ReplySubject;
  private lastHeard = Date.now();
  private waiter: ((outcome: Outcome) => void) | undefined;
  /** A final reply or a closed inbox that came while nothing was waited for. */
  private early: Outcome | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(inbox: ReplyInbox) {
    this.reply = inbox.open((msg) => this.receive(msg));
  }

  get subject(): string {
    return this.reply.subject;
  }

  heard(at: number): void {
    this.lastHeard = at;
  }

  close(): void {
    clearTimeout(this.timer);
    this.waiter = undefined;
    this.reply.close();
  }

  /** Waits for a reply until `until` (then `expiry`), or until `silenceMs` pass without a sign of life. */
  wait(until: number, expiry: Outcome, silenceMs: number): Promise<Outcome> {
    const early = this.early;
    if (early) {
      this.early = undefined;
      return Promise.resolve(early);
    }
    return new Promise<Outcome>((resolve) => {
      this.waiter = resolve;
      const check = () => {
        if (this.waiter !== resolve) return;
        const now = Date.now();
        if (now >= until) return this.settle(expiry);
        if (silenceMs > 0 && now - this.lastHeard >= silenceMs) return this.settle({ kind: "silent" });
        const next = silenceMs > 0 ? Math.min(until, this.lastHeard + silenceMs) : until;
        // check after the poll phase, so messages already read from the socket count first
        this.timer = setTimeout(() => setImmediate(check), next - now);
      };
      check();
    });
  }

  settle(outcome: Outcome): void {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      clearTimeout(this.timer);
      waiter(outcome);
    } else if (!this.early && (outcome.kind === "reply" || outcome.kind === "closed")) {
      this.early = outcome;
    }
  }

  private receive(msg: Msg | undefined): void {
    if (!msg) this.settle({ kind: "closed" });
    else if (msg.data.length > 0) this.settle({ kind: "reply", msg });
    else if (msg.headers?.code === 503) this.settle({ kind: "no-responders" });
    else this.lastHeard = Date.now(); // a keep-alive
  }
}

/**
 * Sends a request and returns its reply message: the answer, or the last
 * refusal when every attempt was turned away. Throws typed errors for
 * everything else; `deadline_exceeded` once the deadline passes unanswered.
 */
export async function exchange(nc: NatsConnection, inbox: ReplyInbox, plan: ExchangePlan): Promise<Msg> {
  const startedAt = Date.now();
  let current: Exchange;
  try {
    current = new Exchange(inbox);
  } catch (error) {
    throw connectionFailed(plan.subject, error);
  }
  const onAbort = () => current.settle({ kind: "aborted" });
  plan.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    let last: RuntimeError | Msg | undefined;
    for (let attempt = 1; ; attempt++) {
      if (plan.signal?.aborted) throw aborted(plan);
      try {
        nc.publish(plan.wireSubject, plan.data, { reply: current.subject, headers: plan.headers });
      } catch (error) {
        throw connectionFailed(plan.subject, error);
      }
      const sentAt = Date.now();
      current.heard(sentAt);
      const attemptEnd = plan.attemptTimeoutMs === undefined ? Infinity : sentAt + plan.attemptTimeoutMs;
      const outcome =
        attemptEnd < plan.deadline
          ? await current.wait(attemptEnd, ATTEMPT_TIMEOUT, plan.silenceMs)
          : await current.wait(plan.deadline, DEADLINE, plan.silenceMs);

      let retry: boolean;
      switch (outcome.kind) {
        case "reply":
          if (!isRefusal(outcome.msg)) return outcome.msg;
          // turned away unhandled: another replica may take it, whatever the endpoint's safety
          last = outcome.msg;
          retry = true;
          break;
        case "no-responders":
          last = new RuntimeError("unavailable", `no service is answering on ${plan.subject}`, {
            retryAfterMs: 1000,
          });
          retry = true;
          break;
        case "silent":
          last = new RuntimeError(
            "unavailable",
            `the replica handling ${plan.subject} stopped answering (no sign of life for ${plan.silenceMs} ms)` +
              (plan.retrySafe ? "" : "; it may or may not have acted on the request"),
            { retryAfterMs: 1000 },
          );
          retry = plan.retrySafe;
          break;
        case "attempt-timeout":
          last = new RuntimeError(
            "timeout",
            `${plan.subject} did not answer within ${plan.attemptTimeoutMs} ms (attempt ${attempt})`,
          );
          retry = plan.retrySafe;
          break;
        case "deadline":
          throw deadlineExceeded(plan, startedAt, attempt, last);
        case "closed":
          throw connectionFailed(plan.subject, new Error("connection closed"));
        case "aborted":
        case "resume":
          throw aborted(plan);
      }

      const delay = retryDelay(attempt, plan.backoff);
      const giveUp = !retry || attempt >= plan.maxAttempts;
      if (!giveUp && Date.now() + delay >= plan.deadline) {
        throw deadlineExceeded(plan, startedAt, attempt, last);
      }
      if (giveUp || plan.beforeRetry?.(attempt + 1, failureOf(last)) === false) {
        if (last instanceof RuntimeError) throw last;
        return last;
      }
      const resumed = await current.wait(Date.now() + delay, RESUME, 0);
      // an earlier attempt may answer while we wait to send the next one
      if (resumed.kind === "reply" && !isRefusal(resumed.msg)) return resumed.msg;
      if (resumed.kind === "closed") throw connectionFailed(plan.subject, new Error("connection closed"));
      if (resumed.kind === "aborted") throw aborted(plan);
    }
  } finally {
    plan.signal?.removeEventListener("abort", onAbort);
    current.close();
  }
}

/** A refusal as an error, for `beforeRetry`. */
function failureOf(last: RuntimeError | Msg): RuntimeError {
  if (last instanceof RuntimeError) return last;
  return new RuntimeError("overloaded", "turned away by a replica that was full or shutting down");
}

function deadlineExceeded(
  plan: ExchangePlan,
  startedAt: number,
  attempts: number,
  last: RuntimeError | Msg | undefined,
): RuntimeError {
  const lastFailure = last === undefined ? "" : `; before that: ${failureOf(last).message}`;
  return new RuntimeError(
    "deadline_exceeded",
    `${plan.subject} was not answered before its deadline (${Math.max(0, plan.deadline - startedAt)} ms, ${attempts} attempt${attempts === 1 ? "" : "s"})${lastFailure}`,
    { retryable: false, details: { attempts } },
  );
}

function connectionFailed(subject: string, cause: unknown): RuntimeError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new RuntimeError("unavailable", `request on ${subject} failed: ${message}`, {
    retryAfterMs: 1000,
    cause,
  });
}

function aborted(plan: ExchangePlan): RuntimeError {
  const reason: unknown = plan.signal?.reason;
  if (reason instanceof RuntimeError) return reason;
  return new RuntimeError("cancelled", `request on ${plan.subject} was abandoned by its caller`, {
    retryable: false,
    cause: reason,
  });
}
