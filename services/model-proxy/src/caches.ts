import { createHash } from "node:crypto";
import { ModelChatReply, type ModelChatRequest } from "@agent-runtime/contracts";
import { JsonCache, type Redis, redisReady } from "@agent-runtime/stores";

/** Deterministic requests only: temperature 0 or a seed, and no tools with side effects. */
export function isCacheable(request: ModelChatRequest): boolean {
  if (request.cache === false) return false;
  if (request.temperature !== 0 && request.seed === undefined) return false;
  if (request.tools && request.tools.length > 0 && request.toolsHaveSideEffects !== false) return false;
  return true;
}

/**
 * Hash of the normalised request and of whose it is: the answer is shared only by requests of the
 * same tenant and the same end user (or of the tenant's requests without one), so a cache hit
 * (a zero-cost, instant answer) never tells one tenant or user what another asked.
 */
export function responseCacheKey(request: ModelChatRequest, chain: readonly string[]): string {
  const normalised = {
    tenant: request.meta.tenant,
    user: request.meta.userId ?? null,
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
    parallelToolCalls: request.parallelToolCalls ?? null,
    presencePenalty: request.presencePenalty ?? null,
    frequencyPenalty: request.frequencyPenalty ?? null,
    logitBias: request.logitBias ?? null,
    reasoningEffort: request.reasoningEffort ?? null,
  };
  // the tenant and the user lead the key, so the entries of a tenant or of an end user can be found
  // (and forgotten) together; not the thread: a chat turn without one gets a new thread each time
  return `${request.meta.tenant}:${userTag(request.meta.userId)}:${createHash("sha256").update(JSON.stringify(normalised)).digest("hex")}`;
}

/** The end user in cache keys, hashed: `u` + 24 hex digits of sha256, `u-` for requests without one. */
export function userTag(userId: string | undefined): string {
  return userId ? `u${createHash("sha256").update(userId).digest("hex").slice(0, 24)}` : "u-";
}

export function textHash(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Response cache, idempotency records and embedding cache in Redis (misses when Redis is down). */
export class ModelCaches {
  private readonly replies: JsonCache<ModelChatReply>;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttl: {
      responseTtlSeconds: number;
      embeddingTtlSeconds: number;
      idempotencyTtlSeconds: number;
    },
  ) {
    this.replies = new JsonCache(redis, { schema: ModelChatReply });
  }

  async getResponse(key: string): Promise<ModelChatReply | undefined> {
    return this.replies.get(`${this.prefix}mcache:${key}`);
  }

  async putResponse(key: string, reply: ModelChatReply): Promise<void> {
    await this.replies.set(`${this.prefix}mcache:${key}`, reply, this.ttl.responseTtlSeconds);
  }

  async getIdempotent(tenant: string, requestId: string): Promise<ModelChatReply | undefined> {
    return this.replies.get(`${this.prefix}midem:${tenant}:${requestId}`);
  }

  async putIdempotent(tenant: string, requestId: string, reply: ModelChatReply): Promise<void> {
    await this.replies.set(
      `${this.prefix}midem:${tenant}:${requestId}`,
      reply,
      this.ttl.idempotencyTtlSeconds,
    );
  }

  /**
   * Embeddings are kept per tenant (a hit would tell that the tenant's text was embedded before),
   * and per end user (`owner`, see `userTag`) so that forgetting one finds them.
   */
  async getEmbeddings(
    tenant: string,
    owner: string,
    model: string,
    hashes: readonly string[],
  ): Promise<(number[] | undefined)[]> {
    if (!redisReady(this.redis) || hashes.length === 0) return hashes.map(() => undefined);
    try {
      const values = await this.redis.mgetBuffer(
        ...hashes.map((hash) => this.embeddingKey(tenant, owner, model, hash)),
      );
      return values.map((value) =>
        value ? Array.from(new Float32Array(new Uint8Array(value).buffer)) : undefined,
      );
    } catch {
      return hashes.map(() => undefined);
    }
  }

  async putEmbeddings(
    tenant: string,
    owner: string,
    model: string,
    entries: ReadonlyArray<{ hash: string; vector: number[] }>,
  ): Promise<void> {
    if (!redisReady(this.redis) || entries.length === 0 || this.ttl.embeddingTtlSeconds === 0) return;
    const pipeline = this.redis.pipeline();
    for (const entry of entries) {
      pipeline.set(
        this.embeddingKey(tenant, owner, model, entry.hash),
        Buffer.from(new Float32Array(entry.vector).buffer),
        "EX",
        this.ttl.embeddingTtlSeconds,
      );
    }
    await pipeline.exec().catch(() => undefined);
  }

  /** `emb:<tenant>:<userTag>:<model>:<sha256 of the text>` (a model name may hold ':'). */
  private embeddingKey(tenant: string, owner: string, model: string, hash: string): string {
    return `${this.prefix}emb:${tenant}:${owner}:${model}:${hash}`;
  }
}
