import type { ProviderConfig } from "@agent-runtime/config";
import type { Priority } from "@agent-runtime/contracts";
import { type Redis, type WindowCount, WindowLimiter } from "@agent-runtime/stores";

export interface LimitVerdict {
  allowed: boolean;
  /** When not allowed: ms until a retry may pass (window end or cooldown end). */
  waitMs: number;
  which?: "rpm" | "tpm" | "cooldown";
}

const WINDOW_MS = 60_000;
const MAX_COOLDOWN_MS = 60_000;

/**
 * Provider RPM and TPM in one-minute windows shared by every replica through
 * Redis (one atomic script call per attempt), plus a cooldown taken from a
 * provider's own 429 `Retry-After` so no replica keeps knocking. Per-process
 * counters when Redis is down (DESIGN rule 8: local limits, not broken).
 * A request whose estimate alone exceeds the TPM passes when the window is
 * still empty, so an oversized prompt is not refused forever.
 * Batch calls may use only `batchShare` of each window, so the rest stays
 * free for interactive calls however hard a batch flood pushes.
 */
export class ProviderLimiter {
  private readonly windows: WindowLimiter;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly batchShare = 1,
  ) {
    this.windows = new WindowLimiter(redis, { windowMs: WINDOW_MS });
  }

  /** Keys of one provider share a Redis Cluster hash slot. */
  private key(provider: string, suffix: string): string {
    return `${this.prefix}limit:{${provider}}:${suffix}`;
  }

  private counter(provider: string, which: "rpm" | "tpm"): Pick<WindowCount, "key"> {
    return { key: (window) => this.key(provider, `${window}:${which}`) };
  }

  /** The RPM and TPM a call of `priority` may fill the window up to (undefined: no limit). */
  limitsFor(
    config: ProviderConfig,
    priority: Priority,
  ): { rpm: number | undefined; tpm: number | undefined } {
    const share = priority === "batch" ? Math.min(Math.max(this.batchShare, 0), 1) : 1;
    // never 0: a batch call must still get through eventually
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
    const cooldown = this.key(provider, "cooldown");
    const held = this.windows.heldFor(cooldown, now);
    if (held > 0) return { allowed: false, waitMs: held, which: "cooldown" };
    if (!config.rpm && !config.tpm) return { allowed: true, waitMs: 0 };
    const limits = this.limitsFor(config, priority);
    const counts: Array<WindowCount & { which: "rpm" | "tpm" }> = [];
    if (limits.rpm !== undefined)
      counts.push({ ...this.counter(provider, "rpm"), limit: limits.rpm, which: "rpm" });
    if (limits.tpm !== undefined)
      counts.push({
        ...this.counter(provider, "tpm"),
        limit: limits.tpm,
        amount: estimatedTokens,
        which: "tpm",
      });
    const outcome = await this.windows.take({ counts, hold: cooldown, now });
    if (outcome.taken) return { allowed: true, waitMs: 0 };
    const windowLeft = (Math.floor(now / WINDOW_MS) + 1) * WINDOW_MS - now;
    switch (outcome.refusedBy) {
      case "hold":
        return { allowed: false, waitMs: outcome.waitMs, which: "cooldown" };
      case "count":
        return { allowed: false, waitMs: windowLeft, which: counts[outcome.index]!.which };
      case "lease": // no lease is taken here
        return { allowed: false, waitMs: windowLeft };
    }
  }

  /**
   * The provider itself answered 429: hold calls to it for `ms` in this
   * process at once and, through Redis, in every replica.
   */
  async cooldown(provider: string, ms: number): Promise<void> {
    if (Number.isNaN(ms)) return;
    const span = Math.min(Math.max(ms, 1), MAX_COOLDOWN_MS);
    await this.windows.hold(this.key(provider, "cooldown"), span);
  }

  /** Corrects the window's token count with the real usage after the call. */
  async settle(
    provider: string,
    config: ProviderConfig,
    estimatedTokens: number,
    actualTokens: number,
  ): Promise<void> {
    if (!config.tpm) return;
    await this.windows.add(this.counter(provider, "tpm"), actualTokens - estimatedTokens);
  }
}
