import type { TenantLimits } from "@agent-runtime/config";
import { RuntimeError } from "@agent-runtime/contracts";
import { type Redis, redisReady } from "@agent-runtime/stores";

/**
 * Requests per minute per user, per tenant and global, shared by every
 * replica through Redis in one pipelined round trip; per-replica counters
 * when Redis is down.
 */
export class RateLimiter {
  private readonly local = new Map<string, { window: number; count: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async check(
    tenant: string,
    userId: string | undefined,
    limits: TenantLimits,
    globalRpm: number | undefined,
  ): Promise<void> {
    const window = Math.floor(Date.now() / 60_000);
    const retryAfterMs = (window + 1) * 60_000 - Date.now();
    const checks: { key: string; limit: number; which: string }[] = [];
    if (limits.requestsPerMinute)
      checks.push({
        key: `rpm:t:${tenant}`,
        limit: limits.requestsPerMinute,
        which: "tenant requests per minute",
      });
    if (limits.userRequestsPerMinute && userId) {
      checks.push({
        key: `rpm:u:${tenant}:${userId}`,
        limit: limits.userRequestsPerMinute,
        which: "user requests per minute",
      });
    }
    if (globalRpm) checks.push({ key: "rpm:global", limit: globalRpm, which: "global requests per minute" });
    if (checks.length === 0) return;
    const counts = await this.increment(
      checks.map((check) => `${this.prefix}${check.key}:${window}`),
      window,
    );
    checks.forEach((check, index) => {
      if ((counts[index] ?? 0) > check.limit) {
        throw new RuntimeError("rate_limited", `rate limit reached: ${check.which} (${check.limit})`, {
          retryAfterMs,
          details: { limit: check.which, max: check.limit, windowSeconds: 60 },
        });
      }
    });
  }

  private async increment(keys: string[], window: number): Promise<number[]> {
    if (redisReady(this.redis)) {
      try {
        const pipeline = this.redis.multi();
        for (const key of keys) pipeline.incr(key).expire(key, 120);
        const results = (await pipeline.exec()) ?? [];
        return keys.map((_, index) => Number(results[index * 2]?.[1] ?? 0));
      } catch {
        // per-replica fallback below
      }
    }
    return keys.map((key) => {
      const entry = this.local.get(key);
      const next = entry && entry.window === window ? entry.count + 1 : 1;
      this.local.set(key, { window, count: next });
      return next;
    });
  }
}
