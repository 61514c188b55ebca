import type { ModelsSection } from "@agent-runtime/config";
import {
  type ModelEmbedReply,
  type ModelEmbedRequest,
  type ModelUsageRecord,
  RuntimeError,
} from "@agent-runtime/contracts";
import type { ModelCaches } from "./caches.js";
import { textHash, userTag } from "./caches.js";
import { fakeEmbeddingForOffline } from "./offline-embedding.js";
import { costOf } from "./pricing.js";
import { classifyProviderError, type Provider } from "./provider-call.js";
import { countTextTokens } from "./tokens.js";
import { usageRecord } from "./usage-record.js";

const BATCH = 256;

/** model.embed: cached per (tenant, model, text hash); misses go to the provider in batches. */
export async function embed(
  deps: {
    models: ModelsSection;
    providers: Map<string, Provider>;
    caches: ModelCaches;
    publishUsage: (record: ModelUsageRecord) => void;
  },
  request: ModelEmbedRequest,
  signal: AbortSignal,
): Promise<ModelEmbedReply> {
  const started = performance.now();
  const modelName = request.model ?? deps.models.embeddingModel;
  if (!modelName) throw new RuntimeError("unavailable", "no embedding model is configured");
  const model = deps.models.models[modelName];
  if (!model) throw new RuntimeError("validation", `unknown embedding model "${modelName}"`);
  const provider = deps.providers.get(model.provider);
  if (!provider) throw new RuntimeError("unavailable", `provider ${model.provider} is not configured`);

  const hashes = request.input.map(textHash);
  const cached =
    request.cache === false
      ? hashes.map(() => undefined)
      : await deps.caches.getEmbeddings(request.meta.tenant, userTag(request.meta.userId), modelName, hashes);
  const result: (number[] | undefined)[] = [...cached];
  const missing = result.flatMap((vector, index) => (vector ? [] : [index]));
  let promptTokens = 0;
  let estimated = false;
  for (let start = 0; start < missing.length; start += BATCH) {
    const batch = missing.slice(start, start + BATCH);
    const texts = batch.map((index) => request.input[index]!);
    let vectors: number[][];
    if (!provider.client) {
      vectors = texts.map((text) => fakeEmbeddingForOffline(text));
      promptTokens += texts.reduce((sum, text) => sum + countTextTokens(text), 0);
      estimated = true;
    } else {
      try {
        const response = await provider.client.embeddings.create(
          { model: model.id ?? modelName, input: texts },
          {
            signal,
            timeout: Math.max(1, Math.min(provider.config.timeoutMs, request.meta.deadline - Date.now())),
            maxRetries: 2,
          },
        );
        vectors = response.data.sort((a, b) => a.index - b.index).map((entry) => entry.embedding);
        if (typeof response.usage?.prompt_tokens === "number") promptTokens += response.usage.prompt_tokens;
        else {
          promptTokens += texts.reduce((sum, text) => sum + countTextTokens(text), 0);
          estimated = true;
        }
      } catch (error) {
        throw classifyProviderError(error, provider.name);
      }
    }
    if (vectors.length !== texts.length) {
      throw new RuntimeError(
        "upstream",
        `${provider.name} returned ${vectors.length} embeddings for ${texts.length} inputs`,
      );
    }
    batch.forEach((index, position) => {
      result[index] = vectors[position];
    });
    if (request.cache !== false) {
      await deps.caches.putEmbeddings(
        request.meta.tenant,
        userTag(request.meta.userId),
        modelName,
        batch.map((index, position) => ({ hash: hashes[index]!, vector: vectors[position]! })),
      );
    }
  }
  const usage = { promptTokens, completionTokens: 0, cachedTokens: 0, totalTokens: promptTokens };
  const costUsd = costOf(model, usage);
  const meta = request.meta;
  deps.publishUsage(
    usageRecord(meta, {
      kind: "embed",
      route: "embed",
      routeReason: request.model ? "explicit model" : "configured embedding model",
      tier: "embedding",
      model: modelName,
      provider: provider.name,
      usage,
      usageEstimated: estimated,
      costUsd,
      latencyMs: performance.now() - started,
      retries: 0,
      fallbacks: 0,
      cached: missing.length === 0,
      status: "ok",
    }),
  );
  return {
    embeddings: result as number[][],
    model: modelName,
    provider: provider.name,
    usage: { promptTokens },
    costUsd,
    cachedCount: request.input.length - missing.length,
  };
}
