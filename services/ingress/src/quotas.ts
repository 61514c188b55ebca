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

/**
 * Where the tightest tokens-per-day quota of a request stands (OpenAI's `x-ratelimit-*-tokens`).
 * Read from totals cached up to 5 s, so `remaining` may lag the usage of the last seconds (and
 * usage is folded in from the USAGE stream, not counted when the request is admitted).
 */
export interface TokenStatus {
  limit: number;
  /** Tokens left today: the limit less the tokens used today (UTC), never below 0. */
  remaining: number;
  /** Until the next UTC midnight, when the day's count starts again. */
  resetMs: number;
}

/** A request refused for a spend quota; `tokens` is the tightest token quota's status (none: no token limit). */
export class QuotaReached extends RuntimeError {
  readonly tokens: TokenStatus | undefined;

  constructor(
    message: string,
    options: { retryAfterMs: number; details: unknown; tokens: TokenStatus | undefined },
  ) {
    super("rate_limited", message, { retryAfterMs: options.retryAfterMs, details: options.details });
    this.tokens = options.tokens;
  }
}

const TODAY = "(now() AT TIME ZONE 'UTC')::date";
const MONTH = "date_trunc('month', now() AT TIME ZONE 'UTC')::date";

/**
 * Tokens-per-day and cost-per-month quotas of the user, the tenant and the whole
 * runtime, from the usage aggregates the USAGE stream feeds (days in UTC). Totals
 * are re-read at most every 5 s per scope; requests that find them stale share one read.
 * `checkSpend` also tells where the tightest tokens-per-day quota stands; its `remaining`
 * may lag by up to that refresh (plus the time the USAGE stream takes to be folded in).
 */
export class Quotas {
  private readonly spent = new Map<string, { at: number; spend: Promise<Spend | undefined> }>();

  constructor(private readonly pool: pg.Pool) {}

  async checkSpend(
    tenant: string,
    userId: string | undefined,
    limits: TenantLimits,
    global: { tokensPerDay?: number | undefined; costPerMonthUsd?: number | undefined } = {},
  ): Promise<TokenStatus | undefined> {
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
    if (scopes.length === 0) return undefined;
    const spends = await Promise.all(scopes.map((scope) => this.spendOf(scope)));
    const now = Date.now();
    const tokens = tightestTokens(scopes, spends, now);
    scopes.forEach((scope, index) => {
      const spend = spends[index];
      if (spend) check(scope, spend, tokens, now);
    });
    return tokens;
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

/** Milliseconds from `now` to the next UTC midnight. */
function untilMidnight(now: number): number {
  const midnight = new Date(now);
  midnight.setUTCHours(24, 0, 0, 0);
  return midnight.getTime() - now;
}

/**
 * The token quota with the fewest tokens left (the smaller limit on a tie) among the scopes
 * whose totals could be read; none when no scope has a tokens-per-day limit.
 */
export function tightestTokens(
  scopes: readonly { tokensPerDay: number | undefined }[],
  spends: readonly ({ tokensToday: number } | undefined)[],
  now: number,
): TokenStatus | undefined {
  let tightest: TokenStatus | undefined;
  scopes.forEach((scope, index) => {
    const spend = spends[index];
    if (!scope.tokensPerDay || !spend) return;
    const remaining = Math.max(0, scope.tokensPerDay - spend.tokensToday);
    if (
      !tightest ||
      remaining < tightest.remaining ||
      (remaining === tightest.remaining && scope.tokensPerDay < tightest.limit)
    )
      tightest = { limit: scope.tokensPerDay, remaining, resetMs: untilMidnight(now) };
  });
  return tightest;
}

function check(scope: Scope, spend: Spend, tokens: TokenStatus | undefined, now: number): void {
  if (scope.tokensPerDay && spend.tokensToday >= scope.tokensPerDay) {
    const which = `${scope.label === "tenant" ? "" : `${scope.label} `}tokens per day`;
    throw new QuotaReached(`quota reached: ${which} (${scope.tokensPerDay})`, {
      retryAfterMs: untilMidnight(now),
      details: { limit: which, max: scope.tokensPerDay, used: spend.tokensToday },
      tokens,
    });
  }
  if (scope.costPerMonthUsd && spend.costMonth >= scope.costPerMonthUsd) {
    const next = new Date(now);
    next.setUTCMonth(next.getUTCMonth() + 1, 1);
    next.setUTCHours(0, 0, 0, 0);
    const which = `${scope.label === "tenant" ? "" : `${scope.label} `}cost per month`;
    throw new QuotaReached(`quota reached: ${which} ($${scope.costPerMonthUsd})`, {
      retryAfterMs: next.getTime() - now,
      details: { limit: which, maxUsd: scope.costPerMonthUsd, usedUsd: spend.costMonth },
      tokens,
    });
  }
}
