import type { ProviderConfig } from "@agent-runtime/config";
import { type Redis, redisReady } from "@agent-runtime/stores";

export interface LimitVerdict {
  allowed: boolean;
  /** When not allowed: ms until the current window ends. */
  waitMs: number;
  which?: "rpm" | "tpm";
}

/**
 * Provider RPM and TPM in one-minute windows shared by every replica through
 * Redis (one pipelined round trip); per-process counters when Redis is down.
 */
export class ProviderLimiter {
  private readonly local = new Map<string, { window: number; requests: number; tokens: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async acquire(provider: string, config: ProviderConfig, estimatedTokens: number): Promise<LimitVerdict> {
    if (!config.rpm && !config.tpm) return { allowed: true, waitMs: 0 };
    const window = Math.floor(Date.now() / 60_000);
    const waitMs = (window + 1) * 60_000 - Date.now();
    let requests: number;
    let tokens: number;
    const base = `${this.prefix}limit:${provider}:${window}`;
    if (redisReady(this.redis)) {
      try {
        const results = await this.redis
          .multi()
          .incr(`${base}:rpm`)
          .incrby(`${base}:tpm`, estimatedTokens)
          .expire(`${base}:rpm`, 120)
          .expire(`${base}:tpm`, 120)
          .exec();
        requests = Number(results?.[0]?.[1] ?? 0);
        tokens = Number(results?.[1]?.[1] ?? 0);
        if (this.over(config, requests, tokens)) {
          // give the slot back: this call will not be made now
          await this.redis.multi().decr(`${base}:rpm`).decrby(`${base}:tpm`, estimatedTokens).exec();
          return { allowed: false, waitMs, which: config.rpm && requests > config.rpm ? "rpm" : "tpm" };
        }
        return { allowed: true, waitMs: 0 };
      } catch {
        // fall through to local counting
      }
    }
    const entry = this.localEntry(provider, window);
    requests = entry.requests + 1;
    tokens = entry.tokens + estimatedTokens;
    if (this.over(config, requests, tokens)) {
      return { allowed: false, waitMs, which: config.rpm && requests > config.rpm ? "rpm" : "tpm" };
    }
    entry.requests = requests;
    entry.tokens = tokens;
    return { allowed: true, waitMs: 0 };
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
      await this.redis.incrby(`${this.prefix}limit:${provider}:${window}:tpm`, delta).catch(() => undefined);
      return;
    }
    this.localEntry(provider, window).tokens += delta;
  }

  private over(config: ProviderConfig, requests: number, tokens: number): boolean {
    return (
      (config.rpm !== undefined && requests > config.rpm) || (config.tpm !== undefined && tokens > config.tpm)
    );
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
