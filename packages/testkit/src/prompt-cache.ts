import { createHash } from "node:crypto";

/** OpenAI's rule: prompts of at least 1,024 tokens are cached in steps of 128 tokens. */
export const CACHE_MIN_TOKENS = 1024;
export const CACHE_STEP_TOKENS = 128;

/**
 * A provider's prompt-prefix cache as OpenAI describes it: a prompt shares the longest prefix of
 * at least 1,024 tokens, cut at a 128-token step, with a prompt the same model saw before, and
 * those tokens are reported as `prompt_tokens_details.cached_tokens` (and billed at the cached
 * price). Prefixes are remembered per model, the oldest forgotten past `capacity`.
 */
export class PromptPrefixCache {
  private readonly seen = new Map<string, true>();

  constructor(private readonly capacity = 200_000) {}

  /** Cached tokens of this prompt (a token sequence), then remembers its prefixes. */
  lookup(model: string, tokens: readonly number[]): number {
    if (tokens.length < CACHE_MIN_TOKENS) return 0;
    const hash = createHash("sha256").update(model);
    const boundaries: string[] = [];
    let cached = 0;
    for (let end = CACHE_STEP_TOKENS; end <= tokens.length; end += CACHE_STEP_TOKENS) {
      hash.update(Uint32Array.from(tokens.slice(end - CACHE_STEP_TOKENS, end)));
      if (end < CACHE_MIN_TOKENS) continue;
      const key = hash.copy().digest("base64");
      boundaries.push(key);
      // a prefix counts only when every shorter cached prefix of it did
      const before = end === CACHE_MIN_TOKENS ? 0 : end - CACHE_STEP_TOKENS;
      if (cached === before && this.seen.has(key)) cached = end;
    }
    for (const key of boundaries) {
      this.seen.delete(key);
      this.seen.set(key, true);
    }
    while (this.seen.size > this.capacity) {
      const oldest = this.seen.keys().next().value;
      if (oldest === undefined) break;
      this.seen.delete(oldest);
    }
    return cached;
  }

  clear(): void {
    this.seen.clear();
  }
}
