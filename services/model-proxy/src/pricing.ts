import type { ModelConfig } from "@agent-runtime/config";
import type { TokenUsage } from "@agent-runtime/contracts";

/** USD for a call: prices are per 1M tokens; cached input tokens use the cached price when one is set. */
export function costOf(model: ModelConfig | undefined, usage: TokenUsage): number {
  // an unpriced model (warned at start) counts as 0
  if (!model?.pricing) return 0;
  const { input, output, cachedInput } = model.pricing;
  const cached = Math.min(usage.cachedTokens, usage.promptTokens);
  const uncached = usage.promptTokens - cached;
  const cost =
    (uncached * input + cached * (cachedInput ?? input) + usage.completionTokens * output) / 1_000_000;
  return Math.round(cost * 1e10) / 1e10;
}

/**
 * USD the provider's prompt cache saved on a call: its cached input tokens at the input price
 * less the cached-input price (0 for an unpriced model or one with no cached price).
 */
export function promptCacheSavingOf(model: ModelConfig | undefined, usage: TokenUsage): number {
  const pricing = model?.pricing;
  if (pricing?.cachedInput === undefined) return 0;
  const cached = Math.min(usage.cachedTokens, usage.promptTokens);
  const saving = (cached * Math.max(0, pricing.input - pricing.cachedInput)) / 1_000_000;
  return Math.round(saving * 1e10) / 1e10;
}
