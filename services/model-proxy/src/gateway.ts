import { RunCancellation } from "@agent-runtime/bus";
import type { ModelsSection } from "@agent-runtime/config";
import {
  type ModelChatReply,
  type ModelChatRequest,
  type ModelStreamChunk,
  type ModelUsageRecord,
  RuntimeError,
} from "@agent-runtime/contracts";
import { annotateSpan, type Metrics, SpanAttribute } from "@agent-runtime/telemetry";
import type { BreakerState } from "./breaker.js";
import { isCacheable, type ModelCaches, responseCacheKey } from "./caches.js";
import { type Attempted, ChainRunner } from "./chain-runner.js";
import { classifierRequest, parseVerdict, wantsClassifier } from "./classifier.js";
import { createGatewayMetrics, type GatewayMetrics } from "./gateway-metrics.js";
import type { ProviderLimiter } from "./limits.js";
import { costOf, promptCacheSavingOf } from "./pricing.js";
import { classifyProviderError, type Provider, type StreamDelta } from "./provider-call.js";
import { type RoutedDecision, routeRequest } from "./router.js";
import { type UsageFields, usageRecord } from "./usage-record.js";

/**
 * Replies kept in this replica for a request sent again: a caller that heard nothing for a while
 * (the bus's keep-alive silence) re-sends, and the answer may already be here, with or without Redis.
 */
const RECENT_REPLIES = 2000;

export interface GatewayDeps {
  models: ModelsSection;
  providers: Map<string, Provider>;
  limiter: ProviderLimiter;
  caches: ModelCaches;
  metrics: Metrics;
  retry: { maxRetries: number; baseMs: number; maxMs: number };
  breaker: { failures: number; cooldownMs: number };
  limitMaxWaitMs: number;
  /** Share (0–1) of each provider's concurrency kept for interactive calls. */
  interactiveReserve: number;
  publishDelta: (subject: string, chunk: ModelStreamChunk) => void;
  publishUsage: (record: ModelUsageRecord) => void;
  logger?: { warn(object: object, message?: string): void };
}

/** The model gateway: route, dedupe, cache, limit, retry, fail over, account. */
export class Gateway {
  private readonly pending = new Map<string, Promise<ModelChatReply>>();
  private readonly metricsOf: GatewayMetrics;
  private readonly runner: ChainRunner;

  constructor(private readonly deps: GatewayDeps) {
    this.metricsOf = createGatewayMetrics(deps.metrics);
    this.runner = new ChainRunner(deps, this.metricsOf);
  }

  breakerState(provider: string): BreakerState | undefined {
    return this.runner.breakerState(provider);
  }

  /** Calls waiting for a provider's concurrency, by lane. */
  queued(provider: string): { interactive: number; batch: number } {
    return this.runner.queued(provider);
  }

  /** Shutting down: batch calls waiting for a provider slot stop, so a long queue does not hold the drain. */
  stopWaiting(): void {
    this.runner.stopWaiting();
  }

  /** The in-flight calls of runs, aborted when their run is cancelled. */
  readonly runs = new RunCancellation();
  /** Replies of the last calls this replica answered, by request id (oldest dropped first). */
  private readonly recentReplies = new Map<string, ModelChatReply>();

  private remember(key: string, reply: ModelChatReply): void {
    this.recentReplies.set(key, reply);
    if (this.recentReplies.size > RECENT_REPLIES) {
      this.recentReplies.delete(this.recentReplies.keys().next().value!);
    }
  }

  /** model.chat; a repeated request id returns the first result. */
  async chat(request: ModelChatRequest, callerSignal: AbortSignal): Promise<ModelChatReply> {
    this.metricsOf.inFlight.inc();
    try {
      return await this.chatOfRun(request, callerSignal);
    } finally {
      this.metricsOf.inFlight.dec();
    }
  }

  private async chatOfRun(request: ModelChatRequest, callerSignal: AbortSignal): Promise<ModelChatReply> {
    const runId = request.meta.runId;
    if (!runId) return this.chatDeduplicated(request, callerSignal);
    // one signal for the caller's abort and the run's cancel (cheaper than AbortSignal.any per call)
    const controller = new AbortController();
    const onCallerAbort = () => controller.abort(callerSignal.reason);
    if (callerSignal.aborted) onCallerAbort();
    else callerSignal.addEventListener("abort", onCallerAbort, { once: true });
    const done = this.runs.register(runId, controller);
    try {
      return await this.chatDeduplicated(request, controller.signal);
    } finally {
      callerSignal.removeEventListener("abort", onCallerAbort);
      done();
    }
  }

  private async chatDeduplicated(request: ModelChatRequest, signal: AbortSignal): Promise<ModelChatReply> {
    const key = `${request.meta.tenant}:${request.meta.requestId}`;
    const running = this.pending.get(key);
    if (running) return running;
    // a request sent again (its caller heard nothing for a while) after this replica answered it
    const answered = this.recentReplies.get(key);
    if (answered) return answered;
    const promise = (async () => {
      // only a call that may have been made before looks for its record (a first call has none)
      const recorded = request.resumed
        ? await this.deps.caches.getIdempotent(request.meta.tenant, request.meta.requestId)
        : undefined;
      if (recorded) return recorded;
      const reply = await this.chatOnce(request, signal);
      // stored once the reply has gone out; duplicates in flight meanwhile share this promise
      setImmediate(
        () => void this.deps.caches.putIdempotent(request.meta.tenant, request.meta.requestId, reply),
      );
      this.remember(key, reply);
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
    const decision = await this.route(request, signal);
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
        if (request.streamSubject) this.emitWhole(request, hit);
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
      attempted = await this.runner.run(
        request,
        decision.chain,
        decision.tier,
        signal,
        onDelta,
        () => index > 0,
      );
    } catch (error) {
      const failure = error instanceof RuntimeError ? error : classifyProviderError(error, "provider");
      // labelled with the first model of the chain that was tried and its provider
      const tried = decision.chain[0] ?? "unknown";
      const triedProvider = this.deps.models.models[tried]?.provider ?? "unknown";
      this.metricsOf.requests.inc({
        tier: decision.tier,
        model: tried,
        provider: triedProvider,
        status: "error",
        cached: "false",
      });
      this.metricsOf.failures.inc({ model: tried, provider: triedProvider, code: failure.code });
      annotateSpan({
        [SpanAttribute.requestModel]: tried,
        [SpanAttribute.provider]: triedProvider,
        [SpanAttribute.errorType]: failure.code,
      });
      this.deps.publishUsage(
        this.usageRecord(request, route, {
          model: tried,
          provider: triedProvider,
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
    // after the reply has gone out: a failed cache write only costs a later miss
    if (cacheKey && result.finishReason !== "length")
      setImmediate(() => void this.deps.caches.putResponse(cacheKey, reply));
    this.account(request, reply, result.usageEstimated);
    return reply;
  }

  /** Routes; when the heuristic is unsure and a classifier is configured, asks it. */
  private async route(request: ModelChatRequest, signal: AbortSignal): Promise<RoutedDecision> {
    const decision = routeRequest(this.deps.models, request);
    const classifier = this.deps.models.classifier;
    if (!wantsClassifier(classifier, decision)) return decision;
    const heuristic = decision.complexity!;
    try {
      const reply = await this.chatOnce(classifierRequest(classifier, request), signal);
      const verdict = parseVerdict(reply, heuristic);
      this.metricsOf.classifier.inc({ outcome: verdict ? verdict.label : "unreadable" });
      if (!verdict) {
        decision.reason += "; classifier answer unreadable, heuristic kept";
        return decision;
      }
      return routeRequest(this.deps.models, request, verdict);
    } catch (error) {
      if (signal.aborted) throw error;
      this.metricsOf.classifier.inc({ outcome: "error" });
      this.deps.logger?.warn(
        { err: error, requestId: request.meta.requestId },
        "complexity classifier failed",
      );
      decision.reason += "; classifier failed, heuristic kept";
      return decision;
    }
  }

  /** A cached reply to a streamed request: its text and tool calls as deltas 0 and 1. */
  private emitWhole(request: ModelChatRequest, reply: ModelChatReply): void {
    let index = 0;
    const text = textOfMessage(reply);
    if (text) this.emit(request, index++, { content: text });
    const calls = reply.message.tool_calls ?? [];
    if (calls.length > 0) {
      this.emit(request, index, {
        toolCalls: calls.map((call, position) => ({
          index: position,
          id: call.id,
          name: call.function.name,
          arguments: call.function.arguments,
        })),
      });
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
      const tenant = this.metricsOf.tenant(request.meta.tenant);
      this.metricsOf.tenantTokens.inc({ tenant, kind: "prompt" }, reply.usage.promptTokens);
      this.metricsOf.tenantTokens.inc({ tenant, kind: "completion" }, reply.usage.completionTokens);
      this.metricsOf.tenantCost.inc({ tenant }, reply.costUsd);
    }
    annotateSpan({
      [SpanAttribute.operation]: "chat",
      [SpanAttribute.requestModel]: request.model ?? reply.model,
      [SpanAttribute.responseModel]: reply.model,
      [SpanAttribute.provider]: reply.provider,
      [SpanAttribute.inputTokens]: reply.usage.promptTokens,
      [SpanAttribute.outputTokens]: reply.usage.completionTokens,
      [SpanAttribute.cachedTokens]: reply.usage.cachedTokens,
      [SpanAttribute.costUsd]: reply.costUsd,
      [SpanAttribute.cached]: reply.cached,
      "agent_runtime.route.tier": reply.route.tier,
    });
    this.deps.publishUsage(
      this.usageRecord(request, reply.route, {
        model: reply.model,
        provider: reply.provider,
        usage: reply.usage,
        usageEstimated: estimated,
        costUsd: reply.costUsd,
        // a reply from the response cache made no provider call: its whole cost is that cache's saving
        promptCacheSavedUsd: reply.cached
          ? 0
          : promptCacheSavingOf(this.deps.models.models[reply.model], reply.usage),
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
