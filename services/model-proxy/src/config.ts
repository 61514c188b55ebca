import {
  ConfigError,
  type Connections,
  defaultPriceOf,
  loadRuntimeConfig,
  type ModelsSection,
  opsPortOf,
  parseServiceEnv,
} from "@agent-runtime/config";
import { z } from "zod";

/** An empty variable counts as unset (`docker compose` passes `OPENAI_BASE_URL=` when the host has it empty). */
function unsetWhenEmpty<T extends z.ZodType>(schema: T) {
  return z.preprocess(
    (value) => (typeof value === "string" && value.trim() === "" ? undefined : value),
    schema,
  );
}

const OwnEnv = {
  MAX_IN_FLIGHT: z.coerce.number().int().positive().default(256),
  /** Empty or unset with no providers in the config file: the offline dev model. */
  OPENAI_BASE_URL: unsetWhenEmpty(z.string().url().optional()),
  OPENAI_API_KEY: unsetWhenEmpty(z.string().optional()),
  MODEL_FAST: unsetWhenEmpty(z.string().default("gpt-4o-mini")),
  MODEL_STRONG: unsetWhenEmpty(z.string().default("gpt-4o")),
  MODEL_EMBED: unsetWhenEmpty(z.string().default("text-embedding-3-small")),
  RESPONSE_CACHE_TTL_SECONDS: z.coerce.number().int().nonnegative().default(3600),
  EMBEDDING_CACHE_TTL_SECONDS: z.coerce
    .number()
    .int()
    .nonnegative()
    .default(7 * 24 * 3600),
  IDEMPOTENCY_TTL_SECONDS: z.coerce.number().int().positive().default(600),
  MAX_RETRIES: z.coerce.number().int().nonnegative().default(3),
  RETRY_BASE_MS: z.coerce.number().int().positive().default(250),
  RETRY_MAX_MS: z.coerce.number().int().positive().default(8000),
  BREAKER_FAILURES: z.coerce.number().int().positive().default(5),
  BREAKER_COOLDOWN_MS: z.coerce.number().int().positive().default(10_000),
  LIMIT_MAX_WAIT_MS: z.coerce.number().int().nonnegative().default(2000),
  /** Share of MAX_IN_FLIGHT and of each provider's maxConcurrency batch requests may not take. */
  INTERACTIVE_RESERVE: z.coerce.number().min(0).max(1).default(0.25),
  /** Share of each provider's RPM/TPM window batch requests may fill; the rest is kept for interactive. */
  BATCH_RATE_SHARE: z.coerce.number().min(0).max(1).default(0.8),
};

export interface ModelProxyConfig extends Connections {
  opsPort: number;
  maxInFlight: number;
  models: ModelsSection;
  /** True when no provider was configured and the offline dev model answers. */
  offline: boolean;
  /** Models with no price in the config nor the built-in table: their cost counts as 0 (warned at start). */
  unpricedModels: string[];
  cache: { responseTtlSeconds: number; embeddingTtlSeconds: number; idempotencyTtlSeconds: number };
  retry: { maxRetries: number; baseMs: number; maxMs: number };
  breaker: { failures: number; cooldownMs: number };
  limitMaxWaitMs: number;
  /** Lanes (`meta.priority`): what interactive requests keep for themselves. */
  priority: { interactiveReserve: number; batchRateShare: number };
  env: NodeJS.ProcessEnv;
}

/** Env alone (OPENAI_BASE_URL, OPENAI_API_KEY, MODEL_FAST, MODEL_STRONG) is enough; AGENT_CONFIG adds the rest. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ModelProxyConfig {
  const e = parseServiceEnv(OwnEnv, env);
  const runtime = loadRuntimeConfig(env);
  const models: ModelsSection = {
    providers: { ...runtime.providers },
    models: { ...runtime.models },
    prices: runtime.prices,
    tiers: { ...runtime.tiers },
    routes: runtime.routes,
    defaultTier: runtime.defaultTier,
    complexityThreshold: runtime.complexityThreshold,
    ...(runtime.embeddingModel ? { embeddingModel: runtime.embeddingModel } : {}),
    ...(runtime.classifier ? { classifier: runtime.classifier } : {}),
  };
  let offline = false;
  if (Object.keys(models.providers).length === 0) {
    if (e.OPENAI_BASE_URL || e.OPENAI_API_KEY) {
      models.providers.default = {
        baseUrl: e.OPENAI_BASE_URL ?? "https://api.openai.com/v1",
        apiKeyEnv: "OPENAI_API_KEY",
        timeoutMs: 60_000,
        maxConcurrency: 256,
        headers: {},
      };
    } else {
      offline = true;
      models.providers.offline = {
        baseUrl: "http://offline.invalid/v1",
        timeoutMs: 60_000,
        maxConcurrency: 1024,
        headers: {},
      };
    }
    const provider = offline ? "offline" : "default";
    for (const id of new Set([e.MODEL_FAST, e.MODEL_STRONG, e.MODEL_EMBED])) {
      models.models[id] ??= {
        provider,
        contextWindow: 128_000,
        ...(offline ? { pricing: { input: 0, output: 0 } } : {}),
        capabilities: id === e.MODEL_EMBED ? ["embeddings"] : ["tools", "json", "streaming"],
      };
    }
    models.tiers.fast ??= [e.MODEL_FAST];
    models.tiers.strong ??= [e.MODEL_STRONG];
    models.embeddingModel ??= e.MODEL_EMBED;
  }
  validateReferences(models, env.AGENT_CONFIG ?? "environment");
  const unpricedModels = fillPrices(models);
  return {
    ...e.connections,
    opsPort: opsPortOf("model-proxy", env),
    maxInFlight: e.MAX_IN_FLIGHT,
    models,
    offline,
    unpricedModels,
    cache: {
      responseTtlSeconds: e.RESPONSE_CACHE_TTL_SECONDS,
      embeddingTtlSeconds: e.EMBEDDING_CACHE_TTL_SECONDS,
      idempotencyTtlSeconds: e.IDEMPOTENCY_TTL_SECONDS,
    },
    retry: { maxRetries: e.MAX_RETRIES, baseMs: e.RETRY_BASE_MS, maxMs: e.RETRY_MAX_MS },
    breaker: { failures: e.BREAKER_FAILURES, cooldownMs: e.BREAKER_COOLDOWN_MS },
    limitMaxWaitMs: e.LIMIT_MAX_WAIT_MS,
    priority: { interactiveReserve: e.INTERACTIVE_RESERVE, batchRateShare: e.BATCH_RATE_SHARE },
    env,
  };
}

/**
 * Gives each model without a price of its own the config's `prices` entry or the built-in list
 * price of its provider model id; returns the models still without one.
 */
function fillPrices(models: ModelsSection): string[] {
  const unpriced: string[] = [];
  for (const [name, model] of Object.entries(models.models)) {
    if (model.pricing) continue;
    const price = defaultPriceOf(model.id ?? name, models.prices);
    if (price) models.models[name] = { ...model, pricing: price };
    else unpriced.push(name);
  }
  return unpriced;
}

/** Cross-references the schema cannot check: every name must point at something declared. */
function validateReferences(models: ModelsSection, source: string): void {
  const problems: string[] = [];
  for (const [name, model] of Object.entries(models.models)) {
    if (!models.providers[model.provider])
      problems.push(`models.${name}.provider: unknown provider "${model.provider}"`);
  }
  for (const [tier, chain] of Object.entries(models.tiers)) {
    chain.forEach((model, index) => {
      if (!models.models[model]) problems.push(`tiers.${tier}[${index}]: unknown model "${model}"`);
    });
  }
  models.routes.forEach((route, index) => {
    if (route.tier && !models.tiers[route.tier])
      problems.push(`routes[${index}].tier: unknown tier "${route.tier}"`);
    route.variants?.forEach((variant, vIndex) => {
      if (variant.tier && !models.tiers[variant.tier])
        problems.push(`routes[${index}].variants[${vIndex}].tier: unknown tier "${variant.tier}"`);
      if (variant.model && !models.models[variant.model])
        problems.push(`routes[${index}].variants[${vIndex}].model: unknown model "${variant.model}"`);
    });
  });
  if (Object.keys(models.tiers).length > 0 && !models.tiers[models.defaultTier]) {
    problems.push(`defaultTier: unknown tier "${models.defaultTier}"`);
  }
  if (models.classifier) {
    if (!models.tiers[models.classifier.tier])
      problems.push(`classifier.tier: unknown tier "${models.classifier.tier}"`);
    if (models.classifier.minComplexity > models.classifier.maxComplexity)
      problems.push("classifier.minComplexity: must not be above classifier.maxComplexity");
  }
  if (models.embeddingModel && !models.models[models.embeddingModel]) {
    problems.push(`embeddingModel: unknown model "${models.embeddingModel}"`);
  }
  if (problems.length > 0) throw new ConfigError(`invalid config in ${source}: ${problems.join("; ")}`);
}
