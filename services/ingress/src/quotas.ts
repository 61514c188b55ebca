import type { TenantLimits } from "@agent-runtime/config";
import { RuntimeError } from "@agent-runtime/contracts";
import { type Redis, redisReady } from "@agent-runtime/stores";
import type pg from "pg";

/**
 * Concurrent runs per tenant (a Redis counter shared by replicas; per-replica
 * when Redis is down) and token/cost quotas from the usage aggregates.
 */
export class Quotas {
  private readonly localRuns = new Map<string, number>();
  private readonly spent = new Map<string, { at: number; tokensToday: number; costMonth: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly pool: pg.Pool,
    private readonly prefix: string,
  ) {}

  /** Checks tokens-per-day and cost-per-month (usage totals cached for 5 s). */
  async checkSpend(tenant: string, limits: TenantLimits): Promise<void> {
    if (!limits.tokensPerDay && !limits.costPerMonthUsd) return;
    let entry = this.spent.get(tenant);
    if (!entry || Date.now() - entry.at > 5000) {
      const result = await this.pool.query<{ tokens: string | null; cost: number | null }>(
        `SELECT sum(prompt_tokens + completion_tokens) FILTER (WHERE day = current_date) AS tokens,
                sum(cost_usd) AS cost
         FROM usage_daily WHERE tenant = $1 AND day >= date_trunc('month', current_date)`,
        [tenant],
      );
      entry = {
        at: Date.now(),
        tokensToday: Number(result.rows[0]?.tokens ?? 0),
        costMonth: Number(result.rows[0]?.cost ?? 0),
      };
      this.spent.set(tenant, entry);
    }
    if (limits.tokensPerDay && entry.tokensToday >= limits.tokensPerDay) {
      const midnight = new Date();
      midnight.setUTCHours(24, 0, 0, 0);
      throw new RuntimeError("rate_limited", `quota reached: tokens per day (${limits.tokensPerDay})`, {
        retryAfterMs: midnight.getTime() - Date.now(),
        details: { limit: "tokens per day", max: limits.tokensPerDay, used: entry.tokensToday },
      });
    }
    if (limits.costPerMonthUsd && entry.costMonth >= limits.costPerMonthUsd) {
      const next = new Date();
      next.setUTCMonth(next.getUTCMonth() + 1, 1);
      next.setUTCHours(0, 0, 0, 0);
      throw new RuntimeError("rate_limited", `quota reached: cost per month ($${limits.costPerMonthUsd})`, {
        retryAfterMs: next.getTime() - Date.now(),
        details: { limit: "cost per month", maxUsd: limits.costPerMonthUsd, usedUsd: entry.costMonth },
      });
    }
  }

  /** Takes a concurrent-run slot; the returned function gives it back. */
  async takeRunSlot(tenant: string, limits: TenantLimits): Promise<() => void> {
    const max = limits.concurrentRuns;
    if (!max) return () => undefined;
    const key = `${this.prefix}runs:active:${tenant}`;
    if (redisReady(this.redis)) {
      try {
        const results = await this.redis.multi().incr(key).expire(key, 3600).exec();
        const count = Number(results?.[0]?.[1] ?? 0);
        if (count > max) {
          await this.redis.decr(key);
          throw this.overLimit(max);
        }
        let released = false;
        return () => {
          if (released) return;
          released = true;
          void this.redis.decr(key).catch(() => undefined);
        };
      } catch (error) {
        if (error instanceof RuntimeError) throw error;
      }
    }
    const active = this.localRuns.get(tenant) ?? 0;
    if (active >= max) throw this.overLimit(max);
    this.localRuns.set(tenant, active + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.localRuns.set(tenant, Math.max(0, (this.localRuns.get(tenant) ?? 1) - 1));
    };
  }

  private overLimit(max: number): RuntimeError {
    return new RuntimeError("rate_limited", `limit reached: concurrent runs (${max})`, {
      retryAfterMs: 1000,
      details: { limit: "concurrent runs", max },
    });
  }
}
