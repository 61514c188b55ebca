import { type Bus, interactiveReserve } from "@agent-runtime/bus";
import {
  Endpoints,
  ModelStreamChunk,
  ModelUsageRecord,
  QueueGroups,
  Subjects,
} from "@agent-runtime/contracts";
import { openServiceContext } from "@agent-runtime/service";
import { createLogger, type Logger } from "@agent-runtime/telemetry";
import { ModelCaches } from "./caches.js";
import type { ModelProxyConfig } from "./config.js";
import { embed } from "./embeddings.js";
import { serveModelForget } from "./forget-caches.js";
import { Gateway } from "./gateway.js";
import { ProviderLimiter } from "./limits.js";
import { createProvider, type Provider } from "./provider-call.js";

export interface RunningModelProxy {
  bus: Bus;
  gateway: Gateway;
  opsPort: number;
  stop(): Promise<void>;
}

export async function startModelProxy(
  config: ModelProxyConfig,
  options: { logger?: Logger } = {},
): Promise<RunningModelProxy> {
  const logger = options.logger ?? createLogger({ service: "model-proxy", level: config.logLevel });
  if (config.offline) {
    logger.warn(
      "NO MODEL PROVIDER CONFIGURED: answering with the built-in offline dev model. Set OPENAI_BASE_URL / OPENAI_API_KEY or AGENT_CONFIG providers for real models.",
    );
  }
  const context = await openServiceContext({
    name: "model-proxy",
    config,
    logger,
    streams: ["USAGE"],
    postgres: false,
    redis: true,
  });
  const { bus, redis, metrics } = context;
  const providers = new Map<string, Provider>(
    Object.entries(config.models.providers).map(([name, provider]) => [
      name,
      createProvider(name, provider, config.env),
    ]),
  );
  const caches = new ModelCaches(redis, config.redisPrefix, config.cache);
  const publishUsage = (call: ModelUsageRecord) => {
    // an unpriced model's calls say so, so stats can show their cost as unknown rather than $0
    const record = { ...call, priced: config.models.models[call.model]?.pricing !== undefined };
    // once the reply that is being sent has gone out: the record is not on the caller's path
    setImmediate(() =>
      bus
        .publishDurable(Subjects.usageModel, ModelUsageRecord, record, { msgId: record.id })
        .catch((error: unknown) => logger.error({ err: error, usage: record }, "usage record not stored")),
    );
  };
  const gateway = new Gateway({
    models: config.models,
    providers,
    limiter: new ProviderLimiter(redis, config.redisPrefix, config.priority.batchRateShare),
    caches,
    metrics,
    retry: config.retry,
    breaker: config.breaker,
    limitMaxWaitMs: config.limitMaxWaitMs,
    interactiveReserve: config.priority.interactiveReserve,
    publishDelta: (subject, chunk) => bus.publish(subject, ModelStreamChunk, chunk),
    publishUsage,
    logger,
  });

  // a cancelled run's model calls stop at once
  const cancellations = gateway.runs.listen(bus, (runId, aborted) => {
    if (aborted > 0)
      logger.info({ subject: Subjects.runCancelled(runId), aborted }, "cancelled in-flight model calls");
  });
  // batch requests hold at most part of each endpoint's bound; the rest is interactive's
  const serveOptions = (subject: string) => ({
    queue: QueueGroups.modelProxy,
    maxInFlight: config.maxInFlight,
    admit: interactiveReserve({
      maxInFlight: config.maxInFlight,
      interactiveShare: config.priority.interactiveReserve,
      subject,
    }),
  });
  bus.serve(
    Endpoints.modelChat,
    (request, context) => gateway.chat(request, context.signal),
    serveOptions(Endpoints.modelChat.subject),
  );
  bus.serve(
    Endpoints.modelEmbed,
    (request, context) =>
      embed({ models: config.models, providers, caches, publishUsage }, request, context.signal),
    serveOptions(Endpoints.modelEmbed.subject),
  );
  // the models and tiers served here, which ingress lists and accepts as a chat request's `model`
  bus.serve(
    Endpoints.modelList,
    async () => ({
      models: Object.entries(config.models.models).map(([name, model]) => ({
        name,
        provider: model.provider,
        capabilities: model.capabilities,
      })),
      tiers: Object.keys(config.models.tiers),
      ...(config.models.embeddingModel ? { embeddingModel: config.models.embeddingModel } : {}),
    }),
    { queue: QueueGroups.modelProxy, maxInFlight: config.maxInFlight },
  );
  serveModelForget(bus, redis, config.redisPrefix, logger);

  // Redis is a cache and limiter here: without it the proxy is slower and limits are local, so it
  // stays ready (NATS is its only readiness check)
  const ops = await context.startOps();
  if (config.unpricedModels.length > 0) {
    logger.warn(
      { models: config.unpricedModels },
      `no price for ${config.unpricedModels.join(", ")}: their calls cost 0 in usage and budgets; set models.<name>.pricing or prices.<model id> in the config file`,
    );
  }
  const providerLines = Object.entries(config.models.providers).map(([name, provider]) =>
    config.offline
      ? "provider: OFFLINE DEV MODEL (no OPENAI_BASE_URL / OPENAI_API_KEY)"
      : `provider ${name} ${provider.baseUrl}`,
  );
  const tierLines = Object.entries(config.models.tiers).map(([tier, chain]) => `${tier}=${chain.join(">")}`);
  await context.announce(
    [
      ...providerLines,
      `tiers ${tierLines.join(" ")}`,
      ...(config.models.embeddingModel ? [`embeddings ${config.models.embeddingModel}`] : []),
    ],
    { providers: [...providers.keys()], tiers: Object.keys(config.models.tiers) },
  );
  context.onStop(() => {
    cancellations.unsubscribe();
    gateway.stopWaiting();
  });
  return { bus, gateway, opsPort: ops.port, stop: () => context.stop() };
}
