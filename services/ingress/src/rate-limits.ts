import { randomUUID } from "node:crypto";
import type { TenantLimits } from "@agent-runtime/config";
import { RuntimeError } from "@agent-runtime/contracts";
import { type Redis, redisReady } from "@agent-runtime/stores";

const WINDOW_MS = 60_000;

/**
 * One atomic round trip: sliding-window request counters (current and previous
 * minute, weighted) and concurrent-run leases (sorted sets scored by expiry, so a
 * crashed replica's runs stop counting once their lease runs out). Nothing is
 * taken unless every check passes. Returns 0 when admitted followed by the 1-based
 * index of the tightest request rate (0: none) and its figures before this request,
 * else the 1-based index of the first failing check followed by its current figures.
 * KEYS: rate keys (current window, previous window) pairs, then lease keys.
 * ARGV: rateCount, leaseCount, now, windowFraction, windowTtlMs, leaseToken, leaseExpiry,
 *       rate limits..., lease limits...
 */
const ADMIT_SCRIPT = `
local rates = tonumber(ARGV[1])
local leases = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local fraction = tonumber(ARGV[4])
local tightest, tightestRoom, tightestCurrent, tightestPrevious = 0, 0, 0, 0
for i = 1, rates do
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  local limit = tonumber(ARGV[7 + i])
  local room = limit - (current + previous * (1 - fraction) + 1)
  if room < 0 then
    return {i, current, previous}
  end
  if tightest == 0 or room < tightestRoom then
    tightest, tightestRoom, tightestCurrent, tightestPrevious = i, room, current, previous
  end
end
for j = 1, leases do
  local key = KEYS[2 * rates + j]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local active = redis.call('ZCARD', key)
  if active + 1 > tonumber(ARGV[7 + rates + j]) then
    return {rates + j, active, 0}
  end
end
for i = 1, rates do
  redis.call('INCR', KEYS[2 * i - 1])
  redis.call('PEXPIRE', KEYS[2 * i - 1], tonumber(ARGV[5]))
end
for j = 1, leases do
  local key = KEYS[2 * rates + j]
  redis.call('ZADD', key, tonumber(ARGV[7]), ARGV[6])
  redis.call('PEXPIRE', key, tonumber(ARGV[7]) - now + 60000)
end
return {0, tightest, tightestCurrent, tightestPrevious}
`;

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

/** Gives back a run lease; `rate` tells how much of the tightest request rate is left. */
export type Release = (() => void) & { rate?: RateStatus };

type AdmitOutcome = [number, number, number] | [number, number, number, number];
type AdmitCommand = (keys: string[], ...args: (string | number)[]) => Promise<AdmitOutcome>;

/**
 * Requests per minute and concurrent runs, per user, per tenant and global,
 * shared by every replica through Redis (one scripted round trip per request);
 * per-replica counters and leases when Redis is down.
 */
export class Limiter {
  private readonly localRates = new Map<string, { window: number; count: number; previous: number }>();
  private readonly localLeases = new Map<string, Map<string, number>>();
  private readonly admitCommand: AdmitCommand;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand("ingressAdmit", { lua: ADMIT_SCRIPT });
    const command = (redis as unknown as Record<string, unknown>).ingressAdmit as (
      numberOfKeys: number,
      ...args: (string | number)[]
    ) => Promise<AdmitOutcome>;
    this.admitCommand = (keys, ...args) => command.call(redis, keys.length, ...keys, ...args);
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
    const window = Math.floor(now / WINDOW_MS);
    const fraction = (now - window * WINDOW_MS) / WINDOW_MS;
    const token = randomUUID();
    const expiry = now + (request.runLeaseMs ?? 0);
    let outcome: AdmitOutcome | undefined;
    if (redisReady(this.redis)) {
      try {
        const keys = [
          ...rates.flatMap((check) => [
            `${this.prefix}${check.key}:${window}`,
            `${this.prefix}${check.key}:${window - 1}`,
          ]),
          ...leases.map((check) => `${this.prefix}${check.key}`),
        ];
        const result = await this.admitCommand(
          keys,
          rates.length,
          leases.length,
          now,
          fraction,
          2 * WINDOW_MS + 5000,
          token,
          expiry,
          ...rates.map((check) => check.limit),
          ...leases.map((check) => check.limit),
        );
        outcome = [Number(result[0]), Number(result[1]), Number(result[2]), Number(result[3] ?? 0)];
      } catch {
        outcome = undefined; // Redis failed mid-way: count locally below
      }
    }
    const shared = outcome !== undefined;
    outcome ??= this.admitLocally(rates, leases, window, fraction, now, token, expiry);
    const [failed, current, previous] = outcome;
    if (failed === 0) {
      const [, tightest = 0, before = 0, earlier = 0] = outcome;
      const check = rates[tightest - 1];
      const rate = check ? rateStatus(check, before, earlier, fraction, now) : undefined;
      return withRate(leases.length === 0 ? () => undefined : this.releaser(leases, token, shared), rate);
    }
    if (failed <= rates.length) {
      const check = rates[failed - 1]!;
      throw rateError(check, current, previous, fraction);
    }
    const check = leases[failed - 1 - rates.length]!;
    throw new RuntimeError("rate_limited", `limit reached: ${check.which} (${check.limit})`, {
      retryAfterMs: 1000,
      details: { limit: check.which, max: check.limit, active: current },
    });
  }

  private releaser(leases: Check[], token: string, shared: boolean): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (shared && redisReady(this.redis)) {
        const pipeline = this.redis.pipeline();
        for (const check of leases) pipeline.zrem(`${this.prefix}${check.key}`, token);
        void pipeline.exec().catch(() => undefined);
      } else {
        // the lease expires on its own in Redis if the release cannot reach it
        for (const check of leases) {
          const tokens = this.localLeases.get(check.key);
          tokens?.delete(token);
          if (tokens?.size === 0) this.localLeases.delete(check.key);
        }
      }
    };
  }

  private admitLocally(
    rates: Check[],
    leases: Check[],
    window: number,
    fraction: number,
    now: number,
    token: string,
    expiry: number,
  ): AdmitOutcome {
    if (this.localRates.size > 100_000) {
      for (const [key, entry] of this.localRates) if (entry.window < window - 1) this.localRates.delete(key);
    }
    const counts = rates.map((check) => {
      const entry = this.localRates.get(check.key);
      if (entry?.window === window) return { current: entry.count, previous: entry.previous };
      return { current: 0, previous: entry?.window === window - 1 ? entry.count : 0 };
    });
    let tightest: [number, number, number] = [0, 0, 0];
    let tightestRoom = Number.POSITIVE_INFINITY;
    for (const [index, check] of rates.entries()) {
      const { current, previous } = counts[index]!;
      const room = check.limit - (current + previous * (1 - fraction) + 1);
      if (room < 0) return [index + 1, current, previous];
      if (room < tightestRoom) {
        tightestRoom = room;
        tightest = [index + 1, current, previous];
      }
    }
    const held = leases.map((check) => {
      const tokens = this.localLeases.get(check.key) ?? new Map<string, number>();
      for (const [heldToken, until] of tokens) if (until <= now) tokens.delete(heldToken);
      this.localLeases.set(check.key, tokens);
      return tokens;
    });
    for (const [index, check] of leases.entries()) {
      const size = held[index]!.size;
      if (size + 1 > check.limit) return [rates.length + index + 1, size, 0];
    }
    for (const [index, check] of rates.entries()) {
      const { current, previous } = counts[index]!;
      this.localRates.set(check.key, { window, count: current + 1, previous });
    }
    for (const tokens of held) tokens.set(token, expiry);
    return [0, ...tightest];
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
