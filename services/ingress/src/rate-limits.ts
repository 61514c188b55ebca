import type { TenantLimits } from "@agent-runtime/config";
import { RuntimeError } from "@agent-runtime/contracts";
import { type Redis, WindowLimiter } from "@agent-runtime/stores";
import type { TokenStatus } from "./quotas.js";

const WINDOW_MS = 60_000;

interface Check {
  key: string;
  limit: number;
  which: string;
}

export interface AdmitRequest {
  tenant: string;
  userId: string | undefined;
  limits: TenantLimits;
  global: { requestsPerMinute?: number | undefined; concurrentRuns?: number | undefined };
  /** Take a concurrent-run lease for this long (the run's deadline plus a margin). */
  runLeaseMs?: number;
}

/** Where the tightest request rate of an admitted request stands (OpenAI's `x-ratelimit-*-requests`). */
export interface RateStatus {
  limit: number;
  /** Requests left in the sliding window after this one. */
  remaining: number;
  /** Until the window holds none of the requests counted now. */
  resetMs: number;
}

/**
 * Gives back a run lease; `rate` tells how much of the tightest request rate is left, `tokens`
 * (set by the spend check) how much of the tightest tokens-per-day quota.
 */
export type Release = (() => void) & { rate?: RateStatus; tokens?: TokenStatus };

/**
 * Requests per minute (sliding windows) and concurrent runs (leases), per user, per tenant and
 * global, shared by every replica through Redis (one scripted round trip per request, nothing
 * taken unless every check passes); per-replica counters and leases when Redis is down.
 */
export class Limiter {
  private readonly windows: WindowLimiter;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    this.windows = new WindowLimiter(redis, { windowMs: WINDOW_MS, sliding: true });
  }

  /** Admits one request (and one run when `runLeaseMs` is given), or throws `rate_limited`. */
  async admit(request: AdmitRequest): Promise<Release> {
    const { tenant, userId, limits, global } = request;
    const rates: Check[] = [];
    if (limits.requestsPerMinute)
      rates.push({
        key: `rpm:t:${tenant}`,
        limit: limits.requestsPerMinute,
        which: "tenant requests per minute",
      });
    if (limits.userRequestsPerMinute && userId)
      rates.push({
        key: `rpm:u:${tenant}:${userId}`,
        limit: limits.userRequestsPerMinute,
        which: "user requests per minute",
      });
    if (global.requestsPerMinute)
      rates.push({ key: "rpm:global", limit: global.requestsPerMinute, which: "global requests per minute" });
    const leases: Check[] = [];
    if (request.runLeaseMs !== undefined) {
      if (limits.concurrentRuns)
        leases.push({
          key: `runs:t:${tenant}`,
          limit: limits.concurrentRuns,
          which: "tenant concurrent runs",
        });
      if (limits.userConcurrentRuns && userId)
        leases.push({
          key: `runs:u:${tenant}:${userId}`,
          limit: limits.userConcurrentRuns,
          which: "user concurrent runs",
        });
      if (global.concurrentRuns)
        leases.push({ key: "runs:global", limit: global.concurrentRuns, which: "global concurrent runs" });
    }
    if (rates.length === 0 && leases.length === 0) return () => undefined;

    const now = Date.now();
    const { fraction } = this.windows.windowAt(now);
    const outcome = await this.windows.take({
      counts: rates.map((check) => ({
        key: (window: number) => `${this.prefix}${check.key}:${window}`,
        limit: check.limit,
      })),
      leases: leases.map((check) => ({ key: `${this.prefix}${check.key}`, limit: check.limit })),
      leaseMs: request.runLeaseMs ?? 0,
      now,
    });
    if (outcome.taken) {
      const check = outcome.tightest ? rates[outcome.tightest.index] : undefined;
      const rate =
        check && outcome.tightest
          ? rateStatus(check, outcome.tightest.current, outcome.tightest.previous, fraction, now)
          : undefined;
      return withRate(outcome.release, rate);
    }
    switch (outcome.refusedBy) {
      case "count":
        throw rateError(rates[outcome.index]!, outcome.current, outcome.previous, fraction);
      case "lease": {
        const check = leases[outcome.index]!;
        throw new RuntimeError("rate_limited", `limit reached: ${check.which} (${check.limit})`, {
          retryAfterMs: 1000,
          details: { limit: check.which, max: check.limit, active: outcome.active },
        });
      }
      case "hold": // no hold is named here
        throw new RuntimeError("rate_limited", "limit reached", { retryAfterMs: outcome.waitMs });
    }
  }
}

function withRate(release: () => void, rate: RateStatus | undefined): Release {
  const result: Release = release;
  if (rate) result.rate = rate;
  return result;
}

/** The figures of a rate check an admitted request was counted in (`current` before it). */
function rateStatus(
  check: Check,
  current: number,
  previous: number,
  fraction: number,
  now: number,
): RateStatus {
  const used = current + 1 + previous * (1 - fraction);
  const windowEnd = (Math.floor(now / WINDOW_MS) + 1) * WINDOW_MS;
  // requests of this window still weigh on the next one; the previous window's are gone when this ends
  return {
    limit: check.limit,
    remaining: Math.max(0, Math.floor(check.limit - used)),
    resetMs: windowEnd - now + WINDOW_MS,
  };
}

function rateError(check: Check, current: number, previous: number, fraction: number): RuntimeError {
  // time until the weighted count leaves room for one more request
  let waitFraction: number;
  if (current + 1 > check.limit)
    waitFraction = 1 - fraction + Math.min(1, (current + 1 - check.limit) / check.limit);
  else waitFraction = Math.max(0, 1 - (check.limit - current - 1) / Math.max(1, previous) - fraction);
  return new RuntimeError("rate_limited", `rate limit reached: ${check.which} (${check.limit})`, {
    retryAfterMs: Math.max(1000, Math.ceil(waitFraction * WINDOW_MS)),
    details: { limit: check.which, max: check.limit, windowSeconds: WINDOW_MS / 1000 },
  });
}
