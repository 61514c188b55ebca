import { createHash } from "node:crypto";
import { ModelChatReply, type ModelChatRequest } from "@agent-runtime/contracts";
import { type Redis, redisReady } from "@agent-runtime/stores";

/** Deterministic requests only: temperature 0 or a seed, and no tools with side effects. */
export function isCacheable(request: ModelChatRequest): boolean {
  if (request.cache === false) return false;
  if (request.temperature !== 0 && request.seed === undefined) return false;
  if (request.tools && request.tools.length > 0 && request.toolsHaveSideEffects !== false) return false;
  return true;
}

/** Hash of the normalised request: what decides the answer, not who asked. */
export function responseCacheKey(request: ModelChatRequest, chain: readonly string[]): string {
  const normalised = {
    chain,
    messages: request.messages,
    tools: request.tools ?? null,
    toolChoice: request.toolChoice ?? null,
    temperature: request.temperature ?? null,
    topP: request.topP ?? null,
    seed: request.seed ?? null,
    maxTokens: request.maxTokens ?? null,
    stop: request.stop ?? null,
    responseFormat: request.responseFormat ?? null,
  };
  return createHash("sha256").update(JSON.stringify(normalised)).digest("hex");
}

export function textHash(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Response cache, idempotency records and embedding cache in Redis (misses when Redis is down). */
export class ModelCaches {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttl: {
      responseTtlSeconds: number;
      embeddingTtlSeconds: number;
      idempotencyTtlSeconds: number;
    },
  ) {}

  async getResponse(key: string): Promise<ModelChatReply | undefined> {
    return this.getReply(`${this.prefix}mcache:${key}`);
  }

  async putResponse(key: string, reply: ModelChatReply): Promise<void> {
    if (this.ttl.responseTtlSeconds === 0) return;
    await this.set(`${this.prefix}mcache:${key}`, JSON.stringify(reply), this.ttl.responseTtlSeconds);
  }

  async getIdempotent(tenant: string, requestId: string): Promise<ModelChatReply | undefined> {
    return this.getReply(`${this.prefix}midem:${tenant}:${requestId}`);
  }

  async putIdempotent(tenant: string, requestId: string, reply: ModelChatReply): Promise<void> {
    await this.set(
      `${this.prefix}midem:${tenant}:${requestId}`,
      JSON.stringify(reply),
      this.ttl.idempotencyTtlSeconds,
    );
  }

  async getEmbeddings(model: string, hashes: readonly string[]): Promise<(number[] | undefined)[]> {
    if (!redisReady(this.redis) || hashes.length === 0) return hashes.map(() => undefined);
    try {
      const values = await this.redis.mgetBuffer(
        ...hashes.map((hash) => `${this.prefix}emb:${model}:${hash}`),
      );
      return values.map((value) =>
        value ? Array.from(new Float32Array(new Uint8Array(value).buffer)) : undefined,
      );
    } catch {
      return hashes.map(() => undefined);
    }
  }

  async putEmbeddings(
    model: string,
    entries: ReadonlyArray<{ hash: string; vector: number[] }>,
  ): Promise<void> {
    if (!redisReady(this.redis) || entries.length === 0 || this.ttl.embeddingTtlSeconds === 0) return;
    const pipeline = this.redis.pipeline();
    for (const entry of entries) {
      pipeline.set(
        `${this.prefix}emb:${model}:${entry.hash}`,
        Buffer.from(new Float32Array(entry.vector).buffer),
        "EX",
        this.ttl.embeddingTtlSeconds,
      );
    }
    await pipeline.exec().catch(() => undefined);
  }

  private async getReply(key: string): Promise<ModelChatReply | undefined> {
    if (!redisReady(this.redis)) return undefined;
    try {
      const value = await this.redis.get(key);
      if (!value) return undefined;
      const parsed = ModelChatReply.safeParse(JSON.parse(value));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  private async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    if (!redisReady(this.redis)) return;
    await this.redis.set(key, value, "EX", ttlSeconds).catch(() => undefined);
  }
}
