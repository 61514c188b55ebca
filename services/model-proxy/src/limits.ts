import type { ProviderConfig } from "@agent-runtime/config";
import type { Priority } from "@agent-runtime/contracts";
import { type Redis, redisReady } from "@agent-runtime/stores";

export interface LimitVerdict {
  allowed: boolean;
  /** When not allowed: ms until a retry may pass (window end or cooldown end). */
  waitMs: number;
  which?: "rpm" | "tpm" | "cooldown";
}

/**
 * Atomic check-and-count for one provider in the current one-minute window.
 * KEYS: rpm counter, tpm counter, cooldown flag. ARGV: rpm limit (0 = none),
 * tpm limit (0 = none), estimated tokens, counter TTL in seconds.
 * Returns {allowed, waitMs, which} with which 1 = rpm, 2 = tpm, 3 = cooldown.
 * A request whose estimate alone exceeds the TPM passes when the window is
 * still empty, so an oversized prompt is not refused forever.
 */
const ACQUIRE = `
local cooldown = redis.call('PTTL', KEYS[3])
if cooldown > 0 then return {0, cooldown, 3} end
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local estimate = tonumber(ARGV[3])
if rpm > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') + 1 > rpm then return {0, -1, 1} end
if tpm > 0 then
  local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tokens > 0 and tokens + estimate > tpm then return {0, -1, 2} end
end
redis.call('INCR', KEYS[1])
redis.call('INCRBY', KEYS[2], estimate)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {1, 0, 0}
`;

const WHICH = { 1: "rpm", 2: "tpm", 3: "cooldown" } as const;
const MAX_COOLDOWN_MS = 60_000;

type LimitRedis = Redis & {
  modelProxyAcquire(
    rpmKey: string,
    tpmKey: string,
    cooldownKey: string,
    rpm: number,
    tpm: number,
    estimate: number,
    ttlSeconds: number,
  ): Promise<[number, number, number]>;
};

/**
 * Provider RPM and TPM in one-minute windows shared by every replica through
 * Redis (one atomic script call per attempt), plus a cooldown taken from a
 * provider's own 429 `Retry-After` so no replica keeps knocking. Per-process
 * counters when Redis is down (DESIGN rule 8: local limits, not broken).
 * Batch calls may use only `batchShare` of each window, so the rest stays
 * free for interactive calls however hard a batch flood pushes.
 */
export class ProviderLimiter {
  private readonly local = new Map<string, { window: number; requests: number; tokens: number }>();
  private readonly localCooldownUntil = new Map<string, number>();
  private readonly redis: LimitRedis;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly batchShare = 1,
  ) {
    this.redis = redis as LimitRedis;
    if (!("modelProxyAcquire" in redis)) {
      redis.defineCommand("modelProxyAcquire", { numberOfKeys: 3, lua: ACQUIRE });
    }
  }

  /** Keys of one provider share a Redis Cluster hash slot. */
  private key(provider: string, suffix: string): string {
    return `${this.prefix}limit:{${provider}}:${suffix}`;
  }

  /** The RPM and TPM a call of `priority` may fill the window up to (undefined: no limit). */
  limitsFor(
    config: ProviderConfig,
    priority: Priority,
  ): { rpm: number | undefined; tpm: number | undefined } {
    const share = priority === "batch" ? Math.min(Math.max(this.batchShare, 0), 1) : 1;
    // never 0: to the script 0 means "no limit", and batch must still get through eventually
    const scaled = (limit: number | undefined) =>
      limit === undefined ? undefined : Math.max(1, Math.floor(limit * share));
    return { rpm: scaled(config.rpm), tpm: scaled(config.tpm) };
  }

  async acquire(
    provider: string,
    config: ProviderConfig,
    estimatedTokens: number,
    priority: Priority = "interactive",
  ): Promise<LimitVerdict> {
    const now = Date.now();
    const until = this.localCooldownUntil.get(provider);
    if (until !== undefined) {
      if (until > now) return { allowed: false, waitMs: until - now, which: "cooldown" };
      this.localCooldownUntil.delete(provider);
    }
    if (!config.rpm && !config.tpm) return { allowed: true, waitMs: 0 };
    const limits = this.limitsFor(config, priority);
    const window = Math.floor(now / 60_000);
    const windowLeft = (window + 1) * 60_000 - now;
    if (redisReady(this.redis)) {
      try {
        const [allowed, wait, which] = await this.redis.modelProxyAcquire(
          this.key(provider, `${window}:rpm`),
          this.key(provider, `${window}:tpm`),
          this.key(provider, "cooldown"),
          limits.rpm ?? 0,
          limits.tpm ?? 0,
          estimatedTokens,
          120,
        );
        if (allowed === 1) return { allowed: true, waitMs: 0 };
        return {
          allowed: false,
          waitMs: wait > 0 ? wait : windowLeft,
          which: WHICH[which as 1 | 2 | 3] ?? "rpm",
        };
      } catch {
        // fall through to local counting
      }
    }
    const entry = this.localEntry(provider, window);
    const requests = entry.requests + 1;
    const tokens = entry.tokens + estimatedTokens;
    if (limits.rpm !== undefined && requests > limits.rpm)
      return { allowed: false, waitMs: windowLeft, which: "rpm" };
    if (limits.tpm !== undefined && entry.tokens > 0 && tokens > limits.tpm)
      return { allowed: false, waitMs: windowLeft, which: "tpm" };
    entry.requests = requests;
    entry.tokens = tokens;
    return { allowed: true, waitMs: 0 };
  }

  /**
   * The provider itself answered 429: hold calls to it for `ms` in this
   * process at once and, through Redis, in every replica.
   */
  async cooldown(provider: string, ms: number): Promise<void> {
    const span = Math.min(Math.max(ms, 1), MAX_COOLDOWN_MS);
    const until = Date.now() + span;
    if ((this.localCooldownUntil.get(provider) ?? 0) < until) this.localCooldownUntil.set(provider, until);
    if (!redisReady(this.redis)) return;
    // never shorten a longer cooldown another replica already set
    await this.redis
      .eval(
        "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end return 1",
        1,
        this.key(provider, "cooldown"),
        span,
      )
      .catch(() => undefined);
  }

  /** Corrects the window's token count with the real usage after the call. */
  async settle(
    provider: string,
    config: ProviderConfig,
    estimatedTokens: number,
    actualTokens: number,
  ): Promise<void> {
    if (!config.tpm) return;
    const delta = actualTokens - estimatedTokens;
    if (delta === 0) return;
    const window = Math.floor(Date.now() / 60_000);
    if (redisReady(this.redis)) {
      await this.redis.incrby(this.key(provider, `${window}:tpm`), delta).catch(() => undefined);
      return;
    }
    this.localEntry(provider, window).tokens += delta;
  }

  private localEntry(provider: string, window: number) {
    let entry = this.local.get(provider);
    if (!entry || entry.window !== window) {
      entry = { window, requests: 0, tokens: 0 };
      this.local.set(provider, entry);
    }
    return entry;
  }
}
