import { z } from "zod";
import { ModelPricing } from "./prices.js";

export const ProviderConfig = z.object({
  baseUrl: z.string().url(),
  /** Name of the environment variable that holds the key. */
  apiKeyEnv: z.string().optional(),
  apiKey: z.string().optional(),
  timeoutMs: z.number().int().positive().default(60_000),
  rpm: z.number().int().positive().optional(),
  tpm: z.number().int().positive().optional(),
  maxConcurrency: z.number().int().positive().default(64),
  headers: z.record(z.string(), z.string()).default({}),
});
export type ProviderConfig = z.infer<typeof ProviderConfig>;

export const ModelConfig = z.object({
  provider: z.string(),
  /** The provider's own model id (defaults to the key of this entry). */
  id: z.string().optional(),
  contextWindow: z.number().int().positive().default(128_000),
  /**
   * USD per 1M tokens. Absent: the `prices` table of the config, else the built-in list prices of
   * well-known models; a model with no price anywhere is a start-up warning (its cost counts as 0).
   */
  pricing: ModelPricing.optional(),
  capabilities: z
    .array(z.enum(["tools", "json", "vision", "embeddings", "streaming"]))
    .default(["tools", "json", "streaming"]),
  tokenizer: z.string().optional(),
});
export type ModelConfig = z.infer<typeof ModelConfig>;

export const RouteRule = z.object({
  name: z.string(),
  when: z
    .object({
      task: z.array(z.string()).optional(),
      agent: z.array(z.string()).optional(),
      deepAnalysis: z.boolean().optional(),
      minComplexity: z.number().min(0).max(1).optional(),
      maxComplexity: z.number().min(0).max(1).optional(),
    })
    .default({}),
  tier: z.string().optional(),
  /**
   * A/B split: variants chosen by weight, sticky per user, thread or run. A variant names a tier
   * or a model; one with neither only labels the call (an agent's prompt variant) and the
   * following rules route it.
   */
  variants: z
    .array(
      z.object({
        name: z.string(),
        tier: z.string().optional(),
        model: z.string().optional(),
        weight: z.number().positive(),
      }),
    )
    .min(1)
    .optional(),
  stickyBy: z.enum(["user", "thread", "run"]).default("user"),
});
export type RouteRule = z.infer<typeof RouteRule>;

/**
 * Optional second opinion on complexity: when the cheap heuristic lands
 * inside [minComplexity, maxComplexity] (unsure), a short call to `tier`
 * answers SIMPLE or COMPLEX and decides which side of the threshold the
 * request falls. Off unless configured.
 */
export const ComplexityClassifier = z.object({
  tier: z.string().default("fast"),
  minComplexity: z.number().min(0).max(1).default(0.2),
  maxComplexity: z.number().min(0).max(1).default(0.6),
  /** Budget for the classifier call; on timeout or error the heuristic decides. */
  timeoutMs: z.number().int().positive().default(3000),
  /** Characters of the last user message shown to the classifier. */
  maxInputChars: z.number().int().positive().default(2000),
});
export type ComplexityClassifier = z.infer<typeof ComplexityClassifier>;

export const ModelsSection = z.object({
  providers: z.record(z.string(), ProviderConfig).default({}),
  models: z.record(z.string(), ModelConfig).default({}),
  /** Prices by the provider's model id (USD per 1M tokens), over the built-in table. */
  prices: z.record(z.string(), ModelPricing).default({}),
  /** Each tier is an ordered fallback chain of model names. */
  tiers: z.record(z.string(), z.array(z.string()).min(1)).default({}),
  routes: z.array(RouteRule).default([]),
  defaultTier: z.string().default("fast"),
  embeddingModel: z.string().optional(),
  /** Complexity at or above which unrouted requests go to the `strong` tier. */
  complexityThreshold: z.number().min(0).max(1).default(0.45),
  classifier: ComplexityClassifier.optional(),
});
export type ModelsSection = z.infer<typeof ModelsSection>;
