import type { TenantLimits } from "@agent-runtime/config";
import { RuntimeError } from "@agent-runtime/contracts";
import type pg from "pg";

const REFRESH_MS = 5000;

interface Spend {
  tokensToday: number;
  costMonth: number;
}

interface Scope {
  /** Cache key. */
  key: string;
  /** Words used in the error: "tenant", "user", "global". */
  label: string;
  tokensPerDay: number | undefined;
  costPerMonthUsd: number | undefined;
  read(): Promise<Spend>;
}

const TODAY = "(now() AT TIME ZONE 'UTC')::date";
const MONTH = "date_trunc('month', now() AT TIME ZONE 'UTC')::date";

/**
 * Tokens-per-day and cost-per-month quotas of the user, the tenant and the whole
 * runtime, from the usage aggregates the USAGE stream feeds (days in UTC). Totals
 * are re-read at most every 5 s per scope; requests that find them stale share one read.
 */
export class Quotas {
  private readonly spent = new Map<string, { at: number; spend: Promise<Spend | undefined> }>();

  constructor(private readonly pool: pg.Pool) {}

  async checkSpend(
    tenant: string,
    userId: string | undefined,
    limits: TenantLimits,
    global: { tokensPerDay?: number | undefined; costPerMonthUsd?: number | undefined } = {},
  ): Promise<void> {
    const scopes: Scope[] = [];
    if (userId && (limits.userTokensPerDay || limits.userCostPerMonthUsd)) {
      scopes.push({
        key: `u:${tenant}:${userId}`,
        label: "user",
        tokensPerDay: limits.userTokensPerDay,
        costPerMonthUsd: limits.userCostPerMonthUsd,
        read: () =>
          this.read(
            `SELECT sum(tokens) FILTER (WHERE day = ${TODAY}) AS tokens, sum(cost_usd) AS cost
             FROM usage_user_daily WHERE tenant = $1 AND user_id = $2 AND day >= ${MONTH}`,
            [tenant, userId],
          ),
      });
    }
    if (limits.tokensPerDay || limits.costPerMonthUsd) {
      scopes.push({
        key: `t:${tenant}`,
        label: "tenant",
        tokensPerDay: limits.tokensPerDay,
        costPerMonthUsd: limits.costPerMonthUsd,
        read: () =>
          this.read(
            `SELECT sum(prompt_tokens + completion_tokens) FILTER (WHERE day = ${TODAY}) AS tokens, sum(cost_usd) AS cost
             FROM usage_daily WHERE tenant = $1 AND day >= ${MONTH}`,
            [tenant],
          ),
      });
    }
    if (global.tokensPerDay || global.costPerMonthUsd) {
      scopes.push({
        key: "*",
        label: "global",
        tokensPerDay: global.tokensPerDay,
        costPerMonthUsd: global.costPerMonthUsd,
        read: () =>
          this.read(
            `SELECT sum(prompt_tokens + completion_tokens) FILTER (WHERE day = ${TODAY}) AS tokens, sum(cost_usd) AS cost
             FROM usage_daily WHERE day >= ${MONTH}`,
            [],
          ),
      });
    }
    if (scopes.length === 0) return;
    const spends = await Promise.all(scopes.map((scope) => this.spendOf(scope)));
    scopes.forEach((scope, index) => {
      const spend = spends[index];
      if (spend) check(scope, spend);
    });
  }

  private spendOf(scope: Scope): Promise<Spend | undefined> {
    const cached = this.spent.get(scope.key);
    if (cached && Date.now() - cached.at < REFRESH_MS) return cached.spend;
    const spend = scope.read().catch(
      // Postgres unreachable: keep the last known totals (or none) rather than refuse every request
      () => cached?.spend ?? undefined,
    );
    this.spent.set(scope.key, { at: Date.now(), spend });
    if (this.spent.size > 100_000) this.spent.delete(this.spent.keys().next().value!);
    return spend;
  }

  private async read(sql: string, parameters: string[]): Promise<Spend> {
    const result = await this.pool.query<{ tokens: string | null; cost: number | null }>(sql, parameters);
    return { tokensToday: Number(result.rows[0]?.tokens ?? 0), costMonth: Number(result.rows[0]?.cost ?? 0) };
  }
}

function check(scope: Scope, spend: Spend): void {
  if (scope.tokensPerDay && spend.tokensToday >= scope.tokensPerDay) {
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    const which = `${scope.label === "tenant" ? "" : `${scope.label} `}tokens per day`;
    throw new RuntimeError("rate_limited", `quota reached: ${which} (${scope.tokensPerDay})`, {
      retryAfterMs: midnight.getTime() - Date.now(),
      details: { limit: which, max: scope.tokensPerDay, used: spend.tokensToday },
    });
  }
  if (scope.costPerMonthUsd && spend.costMonth >= scope.costPerMonthUsd) {
    const next = new Date();
    next.setUTCMonth(next.getUTCMonth() + 1, 1);
    next.setUTCHours(0, 0, 0, 0);
    const which = `${scope.label === "tenant" ? "" : `${scope.label} `}cost per month`;
    throw new RuntimeError("rate_limited", `quota reached: ${which} ($${scope.costPerMonthUsd})`, {
      retryAfterMs: next.getTime() - Date.now(),
      details: { limit: which, maxUsd: scope.costPerMonthUsd, usedUsd: spend.costMonth },
    });
  }
}
