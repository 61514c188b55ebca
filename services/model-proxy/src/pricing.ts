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
