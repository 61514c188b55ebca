import { createHash } from "node:crypto";
import { type MemoryHit, MemorySearchReply, type MemorySearchRequest } from "@agent-runtime/contracts";
import { type Redis, redisReady } from "@agent-runtime/stores";

/**
 * Stores a result and records its key in the tenant's index, so the tenant's
 * entries can be dropped together; refused when the tenant's memories changed
 * since the search began (its epoch moved), so a slow search never caches
 * text that a forget has just deleted.
 */
const PUT_SCRIPT = `
if (redis.call("GET", KEYS[3]) or "") ~= ARGV[3] then return 0 end
redis.call("SET", KEYS[1], ARGV[1], "EX", tonumber(ARGV[2]))
redis.call("SADD", KEYS[2], KEYS[1])
redis.call("EXPIRE", KEYS[2], tonumber(ARGV[2]) * 2)
return 1
`;

const CLEAR_SCRIPT = `
local keys = redis.call("SMEMBERS", KEYS[1])
for _, key in ipairs(keys) do redis.call("DEL", key) end
redis.call("DEL", KEYS[1])
redis.call("INCR", KEYS[2])
redis.call("EXPIRE", KEYS[2], tonumber(ARGV[1]))
return #keys
`;

export interface CacheLookup {
  hits?: MemoryHit[];
  /** Pass to `put`; null when Redis cannot be used. */
  epoch: string | null;
}

/**
 * A short-lived Redis cache of query → hits, per tenant, keyed by the
 * search's scope and user too (one user's hits never answer another). Dropped for the
 * tenant whenever its memories change (new embeddings, forget), so it never
 * serves deleted text and new memories show up at once. Redis down: no cache.
 */
export class SearchCache {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds: number,
  ) {}

  private indexKey(tenant: string): string {
    return `${this.prefix}mem:search:${tenant}:index`;
  }

  /** Holds only a counter, outliving any search in flight. */
  private epochKey(tenant: string): string {
    return `${this.prefix}mem:search:${tenant}:epoch`;
  }

  private key(request: MemorySearchRequest): string {
    const digest = createHash("sha256")
      .update(
        JSON.stringify([
          request.query,
          request.scope,
          request.userId ?? null,
          request.kinds ?? null,
          request.filter ?? null,
          request.limit,
          request.budgetTokens ?? null,
          request.minScore ?? null,
        ]),
      )
      .digest("base64url");
    return `${this.prefix}mem:search:${request.meta.tenant}:${digest}`;
  }

  private get enabled(): boolean {
    return this.ttlSeconds > 0 && redisReady(this.redis);
  }

  async get(request: MemorySearchRequest): Promise<CacheLookup> {
    if (!this.enabled) return { epoch: null };
    try {
      const [cached, epoch] = await this.redis.mget(this.key(request), this.epochKey(request.meta.tenant));
      if (!cached) return { epoch: epoch ?? "" };
      const parsed = MemorySearchReply.safeParse(JSON.parse(cached));
      return parsed.success ? { hits: parsed.data.hits, epoch: epoch ?? "" } : { epoch: epoch ?? "" };
    } catch {
      return { epoch: null };
    }
  }

  async put(request: MemorySearchRequest, epoch: string | null, hits: MemoryHit[]): Promise<void> {
    if (!this.enabled || epoch === null) return;
    await this.redis
      .eval(
        PUT_SCRIPT,
        3,
        this.key(request),
        this.indexKey(request.meta.tenant),
        this.epochKey(request.meta.tenant),
        JSON.stringify({ hits, cached: false }),
        String(this.ttlSeconds),
        epoch,
      )
      .catch(() => undefined);
  }

  /** Drops every cached search of a tenant. */
  async clear(tenant: string): Promise<void> {
    if (!redisReady(this.redis)) return;
    await this.redis
      .eval(
        CLEAR_SCRIPT,
        2,
        this.indexKey(tenant),
        this.epochKey(tenant),
        String(Math.max(60, this.ttlSeconds * 4)),
      )
      .catch(() => undefined);
  }
}
