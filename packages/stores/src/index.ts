export { createPool, migrate } from "./postgres.js";
export type { PostgresOptions } from "./postgres.js";
export { createRedis, redisReady } from "./redis.js";
export type { RedisLogger } from "./redis.js";
export type { Redis } from "ioredis";
