import { ModelConfig, type ModelPricing } from "@agent-runtime/config";
import { describe, expect, it } from "vitest";
import { costOf, promptCacheSavingOf } from "./pricing.js";

const model = (pricing?: ModelPricing): ModelConfig =>
  ModelConfig.parse({ provider: "default", ...(pricing ? { pricing } : {}) });
const usage = (promptTokens: number, cachedTokens: number, completionTokens = 0) => ({
  promptTokens,
  completionTokens,
  cachedTokens,
  totalTokens: promptTokens + completionTokens,
});

describe("promptCacheSavingOf", () => {
  it("is the cached tokens at the input price less the cached-input price", () => {
    const priced = model({ input: 3, cachedInput: 0.3, output: 15 });
    expect(promptCacheSavingOf(priced, usage(2048, 1536))).toBeCloseTo((1536 * (3 - 0.3)) / 1e6, 12);
    // the cost with the cache plus the saving is the cost without it
    expect(
      costOf(priced, usage(2048, 1536, 10)) + promptCacheSavingOf(priced, usage(2048, 1536, 10)),
    ).toBeCloseTo(costOf(priced, usage(2048, 0, 10)), 12);
  });

  it("counts no more cached tokens than the prompt has", () => {
    const priced = model({ input: 1, cachedInput: 0.5, output: 2 });
    expect(promptCacheSavingOf(priced, usage(100, 400))).toBeCloseTo((100 * 0.5) / 1e6, 12);
  });

  it("is 0 without cached tokens, without a cached price, or without a price", () => {
    expect(promptCacheSavingOf(model({ input: 3, cachedInput: 0.3, output: 15 }), usage(2048, 0))).toBe(0);
    expect(promptCacheSavingOf(model({ input: 3, output: 15 }), usage(2048, 1024))).toBe(0);
    expect(promptCacheSavingOf(model(), usage(2048, 1024))).toBe(0);
    expect(promptCacheSavingOf(undefined, usage(2048, 1024))).toBe(0);
  });
});
