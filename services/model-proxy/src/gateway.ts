import type { ModelsSection } from "@agent-runtime/config";
import {
  type ModelChatReply,
  type ModelChatRequest,
  type ModelStreamChunk,
  type ModelUsageRecord,
  RuntimeError,
} from "@agent-runtime/contracts";
import type { Metrics } from "@agent-runtime/telemetry";
import { retryDelayMs, sleep } from "./backoff.js";
import { type BreakerState, CircuitBreaker } from "./breaker.js";
import { isCacheable, type ModelCaches, responseCacheKey } from "./caches.js";
import type { ProviderLimiter } from "./limits.js";
import { offlineCompletion } from "./offline-model.js";
import { costOf } from "./pricing.js";
import {
  type CompletionResult,
  callProvider,
  classifyProviderError,
  type Provider,
  type StreamDelta,
} from "./provider-call.js";
import { routeRequest } from "./router.js";
import { estimatePromptTokens } from "./tokens.js";
import { type UsageFields, usageRecord } from "./usage-record.js";

export interface GatewayDeps {
  models: ModelsSection;
  providers: Map<string, Provider>;
  limiter: ProviderLimiter;
  caches: ModelCaches;
  metrics: Metrics;
  retry: { maxRetries: number; baseMs: number; maxMs: number };
  breaker: { failures: number; cooldownMs: number };
  limitMaxWaitMs: number;
  publishDelta: (subject: string, chunk: ModelStreamChunk) => void;
  publishUsage: (record: ModelUsageRecord) => void;
}

interface Attempted {
  result: CompletionResult;
  modelName: string;
  provider: string;
  retries: number;
  fallbacks: number;
}

/** The model gateway: route, dedupe, cache, limit, retry, fail over, account. */
export class Gateway {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly inFlightPerProvider = new Map<string, number>();
  private readonly pending = new Map<string, Promise<ModelChatReply>>();
  private readonly metricsOf;

  constructor(private readonly deps: GatewayDeps) {
    const m = deps.metrics;
    this.metricsOf = {
      requests: m.counter("model_requests_total", "model.chat calls", [
        "tier",
        "model",
        "provider",
        "status",
        "cached",
      ]),
      latency: m.histogram("model_request_seconds", "model.chat latency", ["tier", "cached"]),
      ttft: m.histogram("model_ttft_seconds", "time to first token of streamed calls", ["model"]),
      tokens: m.counter("model_tokens_total", "tokens by kind", ["model", "kind"]),
      cost: m.counter("model_cost_usd_total", "cost in USD", ["model"]),
      retries: m.counter("model_retries_total", "provider retries", ["provider"]),
      fallbacks: m.counter("model_fallbacks_total", "fallbacks along a tier chain", ["tier"]),
      breaker: m.gauge("model_breaker_open", "1 when the provider's breaker is open", ["provider"]),
      limited: m.counter("model_limit_waits_total", "calls that waited for or skipped a provider limit", [
        "provider",
        "limit",
      ]),
    };
    for (const name of deps.providers.keys()) {
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

  private readonly runCalls = new Map<string, Set<AbortController>>();

  /** Aborts the in-flight calls of a cancelled run. */
  cancelRun(runId: string): number {
    const calls = this.runCalls.get(runId);
    for (const controller of calls ?? [])
      controller.abort(new RuntimeError("cancelled", "run was cancelled"));
    return calls?.size ?? 0;
  }

  /** model.chat; a repeated request id returns the first result. */
  async chat(request: ModelChatRequest, callerSignal: AbortSignal): Promise<ModelChatReply> {
    const runId = request.meta.runId;
    if (!runId) return this.chatDeduplicated(request, callerSignal);
    const controller = new AbortController();
    const calls = this.runCalls.get(runId) ?? new Set<AbortController>();
    calls.add(controller);
    this.runCalls.set(runId, calls);
    try {
      return await this.chatDeduplicated(request, AbortSignal.any([callerSignal, controller.signal]));
    } finally {
      calls.delete(controller);
      if (calls.size === 0) this.runCalls.delete(runId);
    }
  }

  private async chatDeduplicated(request: ModelChatRequest, signal: AbortSignal): Promise<ModelChatReply> {
    const key = `${request.meta.tenant}:${request.meta.requestId}`;
    const running = this.pending.get(key);
    if (running) return running;
    const promise = (async () => {
      const recorded = await this.deps.caches.getIdempotent(request.meta.tenant, request.meta.requestId);
      if (recorded) return recorded;
      const reply = await this.chatOnce(request, signal);
      // stored without holding the reply; duplicates in flight meanwhile share this promise
      void this.deps.caches.putIdempotent(request.meta.tenant, request.meta.requestId, reply);
      return reply;
    })();
    this.pending.set(key, promise);
    try {
      return await promise;
    } finally {
      this.pending.delete(key);
    }
  }

  private async chatOnce(request: ModelChatRequest, signal: AbortSignal): Promise<ModelChatReply> {
    const started = performance.now();
    const decision = routeRequest(this.deps.models, request);
    const route = {
      tier: decision.tier,
      reason: decision.reason,
      ...(decision.variant ? { variant: decision.variant } : {}),
      ...(decision.complexity === undefined ? {} : { complexity: decision.complexity }),
    };
    const cacheable = isCacheable(request);
    const cacheKey = cacheable ? responseCacheKey(request, decision.chain) : undefined;
    if (cacheKey) {
      const hit = await this.deps.caches.getResponse(cacheKey);
      if (hit) {
        const reply: ModelChatReply = {
          ...hit,
          route,
          cached: true,
          costUsd: 0,
          latencyMs: performance.now() - started,
          retries: 0,
          fallbacks: 0,
        };
        if (request.streamSubject) this.emit(request, 0, { content: textOfMessage(hit) });
        this.account(request, reply, false);
        return reply;
      }
    }
    let index = 0;
    const onDelta = request.streamSubject
      ? (delta: StreamDelta) => this.emit(request, index++, delta)
      : undefined;
    let attempted: Attempted;
    try {
      attempted = await this.runChain(
        request,
        decision.chain,
        decision.tier,
        signal,
        onDelta,
        () => index > 0,
      );
    } catch (error) {
      const failure = error instanceof RuntimeError ? error : classifyProviderError(error, "provider");
      this.metricsOf.requests.inc({
        tier: decision.tier,
        model: "none",
        provider: "none",
        status: "error",
        cached: "false",
      });
      this.deps.publishUsage(
        this.usageRecord(request, route, {
          model: decision.chain[0] ?? "none",
          provider: "none",
          usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0, totalTokens: 0 },
          usageEstimated: true,
          costUsd: 0,
          latencyMs: performance.now() - started,
          retries: 0,
          fallbacks: 0,
          cached: false,
          status: "error",
          errorCode: failure.code,
        }),
      );
      throw failure;
    }
    const { result } = attempted;
    const modelConfig = this.deps.models.models[attempted.modelName];
    const reply: ModelChatReply = {
      message: result.message,
      finishReason: result.finishReason,
      usage: result.usage,
      costUsd: costOf(modelConfig, result.usage),
      model: attempted.modelName,
      provider: attempted.provider,
      route,
      cached: false,
      latencyMs: performance.now() - started,
      ...(result.ttftMs === undefined ? {} : { ttftMs: result.ttftMs }),
      retries: attempted.retries,
      fallbacks: attempted.fallbacks,
    };
    if (cacheKey && result.finishReason !== "length") await this.deps.caches.putResponse(cacheKey, reply);
    this.account(request, reply, result.usageEstimated);
    return reply;
  }

  private async runChain(
    request: ModelChatRequest,
    chain: readonly string[],
    tier: string,
    signal: AbortSignal,
    onDelta: ((delta: StreamDelta) => void) | undefined,
    streamed: () => boolean,
  ): Promise<Attempted> {
    const deadline = request.meta.deadline;
    const estimated = estimatePromptTokens(request);
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
        return { result: offlineCompletion(request), modelName, provider: provider.name, retries, fallbacks };
      }
      const breaker = this.breakers.get(provider.name)!;
      for (let attempt = 0; attempt <= this.deps.retry.maxRetries; attempt++) {
        if (!breaker.tryPass()) {
          skipped.push(`${provider.name}: circuit open`);
          lastError = new RuntimeError("unavailable", `${provider.name} is failing; circuit open`, {
            retryAfterMs: breaker.retryInMs(),
          });
          break;
        }
        const limitOk = await this.waitForLimit(provider, estimated, deadline, signal);
        if (!limitOk) {
          breaker.success(); // not a provider failure; release a half-open probe slot
          skipped.push(`${provider.name}: rate limit reached`);
          lastError = new RuntimeError("rate_limited", `${provider.name} is at its configured rate limit`, {
            retryAfterMs: 1000,
          });
          break;
        }
        const active = this.inFlightPerProvider.get(provider.name) ?? 0;
        if (active >= provider.config.maxConcurrency) {
          breaker.success();
          skipped.push(`${provider.name}: at max concurrency`);
          lastError = new RuntimeError("overloaded", `${provider.name} is at its concurrency limit`, {
            retryAfterMs: 200,
          });
          break;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0)
          throw new RuntimeError("timeout", "deadline passed while calling the model", { retryable: false });
        this.inFlightPerProvider.set(provider.name, active + 1);
        try {
          const result = await callProvider(provider, model, modelName, request, {
            signal,
            timeoutMs: Math.min(provider.config.timeoutMs, remaining),
            ...(onDelta ? { onDelta } : {}),
          });
          breaker.success();
          void this.deps.limiter.settle(provider.name, provider.config, estimated, result.usage.totalTokens);
          return { result, modelName, provider: provider.name, retries, fallbacks };
        } catch (error) {
          const failure = classifyProviderError(error, provider.name);
          if (failure.code === "cancelled") throw failure;
          if (failure.retryable && failure.code !== "rate_limited") breaker.failure();
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
          await sleep(delay, signal);
        } finally {
          this.inFlightPerProvider.set(provider.name, (this.inFlightPerProvider.get(provider.name) ?? 1) - 1);
        }
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

  /** Waits briefly for a provider's RPM/TPM window; false means fail over instead. */
  private async waitForLimit(
    provider: Provider,
    estimated: number,
    deadline: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const giveUpAt = Math.min(deadline, Date.now() + this.deps.limitMaxWaitMs);
    for (;;) {
      const verdict = await this.deps.limiter.acquire(provider.name, provider.config, estimated);
      if (verdict.allowed) return true;
      this.metricsOf.limited.inc({ provider: provider.name, limit: verdict.which ?? "rpm" });
      const wait = Math.min(verdict.waitMs + Math.round(Math.random() * 50), 1000);
      if (Date.now() + wait >= giveUpAt) return false;
      await sleep(wait, signal);
    }
  }

  private emit(request: ModelChatRequest, index: number, delta: StreamDelta): void {
    const chunk: ModelStreamChunk = { requestId: request.meta.requestId, index, ...delta };
    this.deps.publishDelta(request.streamSubject!, chunk);
  }

  private account(request: ModelChatRequest, reply: ModelChatReply, estimated: boolean): void {
    const labels = { model: reply.model };
    this.metricsOf.requests.inc({
      tier: reply.route.tier,
      model: reply.model,
      provider: reply.provider,
      status: "ok",
      cached: String(reply.cached),
    });
    this.metricsOf.latency.observe(
      { tier: reply.route.tier, cached: String(reply.cached) },
      reply.latencyMs / 1000,
    );
    if (reply.ttftMs !== undefined) this.metricsOf.ttft.observe(labels, reply.ttftMs / 1000);
    if (!reply.cached) {
      this.metricsOf.tokens.inc({ ...labels, kind: "prompt" }, reply.usage.promptTokens);
      this.metricsOf.tokens.inc({ ...labels, kind: "completion" }, reply.usage.completionTokens);
      this.metricsOf.tokens.inc({ ...labels, kind: "cached" }, reply.usage.cachedTokens);
      this.metricsOf.cost.inc(labels, reply.costUsd);
    }
    this.deps.publishUsage(
      this.usageRecord(request, reply.route, {
        model: reply.model,
        provider: reply.provider,
        usage: reply.usage,
        usageEstimated: estimated,
        costUsd: reply.costUsd,
        latencyMs: reply.latencyMs,
        ...(reply.ttftMs === undefined ? {} : { ttftMs: reply.ttftMs }),
        retries: reply.retries,
        fallbacks: reply.fallbacks,
        cached: reply.cached,
        status: "ok",
      }),
    );
  }

  private usageRecord(
    request: ModelChatRequest,
    route: ModelChatReply["route"],
    fields: Omit<UsageFields, "kind" | "route" | "routeReason" | "tier" | "variant">,
  ): ModelUsageRecord {
    return usageRecord(request.meta, {
      kind: "chat",
      route: request.task ?? "chat",
      routeReason: route.reason,
      tier: route.tier,
      ...(route.variant ? { variant: route.variant } : {}),
      ...fields,
    });
  }
}

function textOfMessage(reply: ModelChatReply): string {
  const content = reply.message.content;
  return typeof content === "string" ? content : "";
}
