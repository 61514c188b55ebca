export type { Redis } from "ioredis";
export type { BatchedWritesOptions } from "./batched-writes.js";
export { BatchedWrites } from "./batched-writes.js";
export { describePostgres, describeRedis, withoutPassword } from "./describe.js";
export type { CacheSchema, JsonCacheOptions } from "./json-cache.js";
export { JsonCache } from "./json-cache.js";
export type { PostgresOptions } from "./postgres.js";
export { createPool, migrate, withTransaction } from "./postgres.js";
export type { RedisLogger } from "./redis.js";
export { createRedis, redisReady } from "./redis.js";
export { deleteScanned, globEscape } from "./redis-scan.js";
export type {
  CounterFigures,
  LeaseCount,
  TakeOutcome,
  TakeRequest,
  WindowCount,
} from "./window-limiter.js";
export { WindowLimiter } from "./window-limiter.js";
