import type { Priority, WireError } from "@agent-runtime/contracts";
import { InFlightLimiter } from "./limiter.js";

/**
 * A second bound inside an endpoint's `maxInFlight` (`ServeOptions.admit`),
 * asked once a request is valid: it takes a place and returns its release,
 * or refuses the request, which is then answered `overloaded` and marked
 * refused so the requester may send it to another replica.
 */
export type Admission = (data: unknown) => { release: () => void } | { refused: WireError };

/**
 * Slots of a bound of `limit` kept for interactive work when a share
 * `interactiveShare` (0–1) of it is reserved: at least one when anything is
 * reserved, and never all of them, so batch work can always make progress.
 */
export function reservedSlots(limit: number, interactiveShare: number): number {
  if (!(interactiveShare > 0) || limit < 2) return 0;
  return Math.min(limit - 1, Math.max(1, Math.ceil(limit * Math.min(interactiveShare, 1))));
}

export interface InteractiveReserveOptions {
  /** The endpoint's own bound (`ServeOptions.maxInFlight`). */
  maxInFlight: number;
  /** Share of `maxInFlight` batch requests may not take (0–1). */
  interactiveShare: number;
  /** Named in the refusal. */
  subject: string;
}

/** A validated request's `meta.priority` (absent: interactive). */
function priorityOfRequest(data: unknown): Priority {
  const meta = typeof data === "object" && data !== null ? (data as { meta?: unknown }).meta : undefined;
  const priority =
    typeof meta === "object" && meta !== null ? (meta as { priority?: unknown }).priority : undefined;
  return priority === "batch" ? "batch" : "interactive";
}

/**
 * An admission that lets batch requests (`meta.priority: "batch"`) hold at
 * most `maxInFlight` minus the interactive reserve, so a batch flood is
 * refused while interactive requests still find room. One per endpoint:
 *
 * ```ts
 * bus.serve(endpoint, handler, {
 *   queue, maxInFlight, admit: interactiveReserve({ maxInFlight, interactiveShare: 0.25, subject }),
 * });
 * ```
 */
export function interactiveReserve(options: InteractiveReserveOptions): Admission {
  const batchLimit = options.maxInFlight - reservedSlots(options.maxInFlight, options.interactiveShare);
  const batch = new InFlightLimiter(Math.max(1, batchLimit));
  const release = () => batch.release();
  const interactive = { release: () => undefined };
  return (data) => {
    if (priorityOfRequest(data) === "interactive") return interactive;
    if (batch.tryAcquire()) return { release };
    return {
      refused: {
        code: "overloaded",
        message: `${options.subject} is at its limit of ${batch.limit} batch requests in flight`,
        retryable: true,
        retryAfterMs: 1000,
      },
    };
  };
}
