import type { Redis } from "ioredis";
import { redisReady } from "./redis.js";

/** What a cache reads back is checked with: a zod schema fits. */
export interface CacheSchema<T> {
  safeParse(value: unknown): { success: true; data: T } | { success: false };
}

export interface JsonCacheOptions<T> {
  /** Checks an entry read back; one that does not pass is a miss. */
  schema: CacheSchema<T>;
  /**
   * Entries kept in this process as well (the oldest dropped first), read when Redis is down or
   * fails; 0 (the default): none, a miss while Redis cannot answer.
   */
  localEntries?: number;
}

/**
 * Values as JSON in Redis under the caller's keys, each for its time to live, shared by every
 * replica; with `localEntries`, also in this process, which answers while Redis cannot. Never
 * throws for Redis: a failed read is a miss (or the local copy), a failed write is dropped.
 */
export class JsonCache<T> {
  private readonly schema: CacheSchema<T>;
  private readonly localEntries: number;
  private readonly local = new Map<string, { expiresAt: number; value: T }>();

  constructor(
    private readonly redis: Redis,
    options: JsonCacheOptions<T>,
  ) {
    const localEntries = options.localEntries ?? 0;
    if (!Number.isSafeInteger(localEntries) || localEntries < 0)
      throw new RangeError(`localEntries is a whole number from 0, not ${localEntries}`);
    this.schema = options.schema;
    this.localEntries = localEntries;
  }

  /** The value under `key`: from Redis, or from this process while Redis cannot answer. */
  async get(key: string): Promise<T | undefined> {
    if (redisReady(this.redis)) {
      try {
        const stored = await this.redis.get(key);
        return stored === null ? undefined : this.parse(stored);
      } catch {
        // Redis failed: the local copy, if any
      }
    }
    const entry = this.local.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt > Date.now()) return entry.value;
    this.local.delete(key);
    return undefined;
  }

  /** Keeps `value` under `key` for `ttlSeconds` (a whole number; 0 keeps nothing). */
  async set(key: string, value: T, ttlSeconds: number): Promise<void> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0)
      throw new RangeError(`a time to live is a whole number of seconds from 0, not ${ttlSeconds}`);
    if (ttlSeconds === 0) return;
    if (this.localEntries > 0) {
      this.local.delete(key);
      this.local.set(key, { expiresAt: Date.now() + ttlSeconds * 1000, value });
      if (this.local.size > this.localEntries) this.local.delete(this.local.keys().next().value!);
    }
    if (redisReady(this.redis))
      await this.redis.set(key, JSON.stringify(value), "EX", ttlSeconds).catch(() => undefined);
  }

  private parse(stored: string): T | undefined {
    let value: unknown;
    try {
      value = JSON.parse(stored);
    } catch {
      return undefined;
    }
    const parsed = this.schema.safeParse(value);
    return parsed.success ? parsed.data : undefined;
  }
}
