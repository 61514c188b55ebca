import { reservedSlots } from "@agent-runtime/bus";
import type { ModelsSection } from "@agent-runtime/config";
import { type ModelChatRequest, type Priority, priorityOf, RuntimeError } from "@agent-runtime/contracts";
import { retryDelayMs, sleep } from "./backoff.js";
import { type BreakerState, CircuitBreaker } from "./breaker.js";
import { ConcurrencyGate } from "./concurrency.js";
import type { GatewayMetrics } from "./gateway-metrics.js";
import type { ProviderLimiter } from "./limits.js";
import { offlineCompletion, streamOffline } from "./offline-model.js";
import {
  type CompletionResult,
  callProvider,
  classifyProviderError,
  type Provider,
  type StreamDelta,
} from "./provider-call.js";
import { estimatePromptTokens } from "./tokens.js";

export interface ChainRunnerDeps {
  models: ModelsSection;
  providers: Map<string, Provider>;
  limiter: ProviderLimiter;
  retry: { maxRetries: number; baseMs: number; maxMs: number };
  breaker: { failures: number; cooldownMs: number };
  limitMaxWaitMs: number;
  /** Share (0–1) of each provider's `maxConcurrency` batch calls may not take. */
  interactiveReserve: number;
}

export interface Attempted {
  result: CompletionResult;
  modelName: string;
  provider: string;
  retries: number;
  fallbacks: number;
}

/**
 * Walks a tier's fallback chain: per provider a circuit breaker, a
 * concurrency bound, the shared RPM/TPM limits, then the call with retries
 * (exponential backoff with jitter, `Retry-After`, never past the deadline).
 * The bounds and limits have two lanes (`meta.priority`): interactive calls
 * go first and keep a reserve; a batch call waits for its lane's room up to
 * its deadline on the chain's last model (earlier ones: `limitMaxWaitMs`,
 * then it fails over), instead of failing.
 */
export class ChainRunner {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly gates = new Map<string, ConcurrencyGate>();

  constructor(
    private readonly deps: ChainRunnerDeps,
    private readonly metricsOf: GatewayMetrics,
  ) {
    for (const [name, provider] of deps.providers) {
      const max = provider.config.maxConcurrency;
      this.gates.set(name, new ConcurrencyGate(max, reservedSlots(max, deps.interactiveReserve)));
      this.breakers.set(
        name,
        new CircuitBreaker(name, deps.breaker, (provider: string, state: BreakerState) =>
          this.metricsOf.breaker.set({ provider }, state === "open" ? 1 : 0),
        ),
      );
    }
  }

  breakerState(provider: string): BreakerState | undefined {
    return this.breakers.get(provider)?.state;
  }

  /** Calls queued for a provider's concurrency, by lane. */
  queued(provider: string): Record<Priority, number> {
    const gate = this.gates.get(provider);
    return { interactive: gate?.queuedIn("interactive") ?? 0, batch: gate?.queuedIn("batch") ?? 0 };
  }

  /** Shutting down: batch calls waiting for a slot give up (and fail over or fail, retryably). */
  stopWaiting(): void {
    for (const gate of this.gates.values()) gate.close();
  }

  async run(
    request: ModelChatRequest,
    chain: readonly string[],
    tier: string,
    signal: AbortSignal,
    onDelta: ((delta: StreamDelta) => void) | undefined,
    streamed: () => boolean,
  ): Promise<Attempted> {
    const deadline = request.meta.deadline;
    const priority = priorityOf(request.meta);
    // counting the prompt costs real CPU: only a provider with a TPM limit needs the estimate
    let counted: number | undefined;
    const estimateFor = (provider: { config: { tpm?: number | undefined } }): number => {
      if (!provider.config.tpm) return 0;
      counted ??= estimatePromptTokens(request);
      return counted;
    };
    let retries = 0;
    let lastError: RuntimeError | undefined;
    const skipped: string[] = [];
    for (const [position, modelName] of chain.entries()) {
      const model = this.deps.models.models[modelName];
      const provider = model ? this.deps.providers.get(model.provider) : undefined;
      if (!model || !provider) continue;
      if (position > 0) this.metricsOf.fallbacks.inc({ tier });
      const fallbacks = position;
      if (!provider.client) {
        const result = offlineCompletion(request);
        if (onDelta) streamOffline(result, onDelta);
        return { result, modelName, provider: provider.name, retries, fallbacks };
      }
      const breaker = this.breakers.get(provider.name)!;
      const gate = this.gates.get(provider.name)!;
      for (let attempt = 0; attempt <= this.deps.retry.maxRetries; attempt++) {
        if (!breaker.tryPass()) {
          skipped.push(`${provider.name}: circuit open`);
          lastError = new RuntimeError("unavailable", `${provider.name} is failing; circuit open`, {
            retryAfterMs: breaker.retryInMs(),
          });
          break;
        }
        // our own bounds come first; skipping for them says nothing about the provider
        const remainingMs = Math.max(0, deadline - Date.now());
        const lastModel = position === chain.length - 1;
        const slotWait =
          priority === "batch" && lastModel ? remainingMs : Math.min(this.deps.limitMaxWaitMs, remainingMs);
        if (!(await gate.acquire(priority, slotWait, signal))) {
          breaker.release();
          this.metricsOf.limited.inc({ provider: provider.name, limit: "concurrency", priority });
          skipped.push(`${provider.name}: at max concurrency`);
          lastError = new RuntimeError("overloaded", `${provider.name} is at its concurrency limit`, {
            retryAfterMs: 200,
          });
          break;
        }
        let limitWait: number;
        try {
          limitWait = await this.waitForLimit(provider, estimateFor(provider), priority, deadline, signal);
        } catch (error) {
          gate.release(priority);
          breaker.release();
          throw error;
        }
        if (limitWait > 0) {
          gate.release(priority);
          breaker.release();
          skipped.push(`${provider.name}: rate limit reached`);
          lastError = new RuntimeError("rate_limited", `${provider.name} is at its configured rate limit`, {
            retryAfterMs: limitWait,
          });
          break;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          gate.release(priority);
          breaker.release();
          throw new RuntimeError("timeout", "deadline passed while calling the model", { retryable: false });
        }
        let backoffMs = 0;
        try {
          const result = await callProvider(provider, model, modelName, request, {
            signal,
            timeoutMs: Math.min(provider.config.timeoutMs, remaining),
            ...(onDelta ? { onDelta } : {}),
          });
          breaker.success();
          void this.deps.limiter.settle(
            provider.name,
            provider.config,
            estimateFor(provider),
            result.usage.totalTokens,
          );
          return { result, modelName, provider: provider.name, retries, fallbacks };
        } catch (error) {
          const failure = classifyProviderError(error, provider.name);
          if (failure.code === "cancelled") {
            breaker.release();
            // aborted because the caller's deadline passed (the endpoint's timeout signal), not by a cancel
            if ((signal.reason as { name?: unknown } | undefined)?.name === "TimeoutError") {
              throw new RuntimeError(
                "deadline_exceeded",
                `the deadline passed while ${provider.name} was answering`,
                {
                  retryable: false,
                  cause: error,
                },
              );
            }
            throw failure;
          }
          if (failure.code === "rate_limited") {
            // the provider's own 429: every replica holds off for its Retry-After
            if (failure.retryAfterMs !== undefined)
              void this.deps.limiter.cooldown(provider.name, failure.retryAfterMs);
            breaker.success();
          } else if (failure.retryable) breaker.failure();
          else breaker.success();
          lastError = failure;
          if (streamed()) {
            throw new RuntimeError(
              "upstream",
              `stream from ${provider.name} broke after deltas were sent: ${failure.message}`,
              {
                retryable: true,
                details: { provider: provider.name, model: modelName, partial: true },
              },
            );
          }
          if (!failure.retryable) throw failure;
          if (attempt === this.deps.retry.maxRetries) break;
          const delay = retryDelayMs(attempt, this.deps.retry, failure.retryAfterMs);
          if (Date.now() + delay >= deadline) break;
          // a long Retry-After on this provider: try the next model instead of waiting
          if (
            failure.retryAfterMs !== undefined &&
            failure.retryAfterMs > this.deps.limitMaxWaitMs &&
            position < chain.length - 1
          )
            break;
          retries++;
          this.metricsOf.retries.inc({ provider: provider.name });
          backoffMs = delay;
        } finally {
          gate.release(priority);
        }
        // backing off without holding a concurrency slot
        await sleep(backoffMs, signal);
      }
    }
    const reason = skipped.length > 0 ? ` (${skipped.join("; ")})` : "";
    if (lastError) {
      throw new RuntimeError(
        lastError.code,
        `all models of tier ${tier} failed: ${lastError.message}${reason}`,
        {
          retryable: lastError.retryable,
          ...(lastError.retryAfterMs === undefined ? {} : { retryAfterMs: lastError.retryAfterMs }),
          details: { tier, chain, skipped },
        },
      );
    }
    throw new RuntimeError("unavailable", `no usable model in tier ${tier}`, { details: { chain } });
  }

  /**
   * Waits briefly for a provider's RPM/TPM window or 429 cooldown. Returns 0
   * once the call may go, else the ms until it could (fail over instead).
   */
  private async waitForLimit(
    provider: Provider,
    estimated: number,
    priority: Priority,
    deadline: number,
    signal: AbortSignal,
  ): Promise<number> {
    const giveUpAt = Math.min(deadline, Date.now() + this.deps.limitMaxWaitMs);
    for (;;) {
      const verdict = await this.deps.limiter.acquire(provider.name, provider.config, estimated, priority);
      if (verdict.allowed) return 0;
      this.metricsOf.limited.inc({ provider: provider.name, limit: verdict.which ?? "rpm", priority });
      const wait = Math.min(verdict.waitMs + Math.round(Math.random() * 50), 1000);
      if (Date.now() + wait >= giveUpAt) return Math.max(1, verdict.waitMs);
      await sleep(wait, signal);
    }
  }
}
