import { z } from "zod";

/** USD per 1M tokens. */
export const ModelPricing = z.object({
  input: z.number().nonnegative(),
  output: z.number().nonnegative().default(0),
  cachedInput: z.number().nonnegative().optional(),
});
export type ModelPricing = z.infer<typeof ModelPricing>;

/**
 * List prices (USD per 1M tokens) of well-known OpenAI models, used when the config names no price
 * for a model: a model's own `pricing` and the config's `prices` table win over these.
 */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPricing>> = {
  "gpt-5": { input: 1.25, cachedInput: 0.125, output: 10 },
  "gpt-5-mini": { input: 0.25, cachedInput: 0.025, output: 2 },
  "gpt-5-nano": { input: 0.05, cachedInput: 0.005, output: 0.4 },
  "gpt-4.1": { input: 2, cachedInput: 0.5, output: 8 },
  "gpt-4.1-mini": { input: 0.4, cachedInput: 0.1, output: 1.6 },
  "gpt-4.1-nano": { input: 0.1, cachedInput: 0.025, output: 0.4 },
  "gpt-4o": { input: 2.5, cachedInput: 1.25, output: 10 },
  "gpt-4o-mini": { input: 0.15, cachedInput: 0.075, output: 0.6 },
  "gpt-4-turbo": { input: 10, output: 30 },
  "gpt-4": { input: 30, output: 60 },
  "gpt-3.5-turbo": { input: 0.5, output: 1.5 },
  o1: { input: 15, cachedInput: 7.5, output: 60 },
  "o1-mini": { input: 1.1, cachedInput: 0.55, output: 4.4 },
  o3: { input: 2, cachedInput: 0.5, output: 8 },
  "o3-mini": { input: 1.1, cachedInput: 0.55, output: 4.4 },
  "o4-mini": { input: 1.1, cachedInput: 0.275, output: 4.4 },
  "text-embedding-3-small": { input: 0.02, output: 0 },
  "text-embedding-3-large": { input: 0.13, output: 0 },
  "text-embedding-ada-002": { input: 0.1, output: 0 },
};

/** `openai/gpt-4o-2024-08-06` → `gpt-4o`: a router's vendor prefix and a dated snapshot suffix dropped. */
function baseModelId(id: string): string {
  return id
    .replace(/^openai\//i, "")
    .replace(/-(\d{4}-\d{2}-\d{2}|\d{4})$/, "")
    .toLowerCase();
}

/**
 * The price of a provider's model id: from `prices` (the config's table, by exact id), else the
 * built-in table (exact, then without a vendor prefix or date suffix); undefined when unknown.
 */
export function defaultPriceOf(
  id: string,
  prices: Readonly<Record<string, ModelPricing>> = {},
): ModelPricing | undefined {
  return prices[id] ?? DEFAULT_PRICES[id] ?? DEFAULT_PRICES[baseModelId(id)];
}
