import { Redis } from "ioredis";

export interface RedisLogger {
  warn(object: object, message?: string): void;
}

/**
 * A Redis client for caches and limiters: fails fast instead of queueing
 * while disconnected (callers fall back), reconnects in the background.
 */
export function createRedis(url: string, logger?: RedisLogger): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 1000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    // commands issued in the same tick share one write (a turn's cache, limiter and idempotency
    // commands from concurrent requests cost one syscall, not one each)
    enableAutoPipelining: true,
  });
  let down = false;
  redis.on("error", (error: Error) => {
    if (!down) logger?.warn({ err: error.message }, "redis unavailable; using local fallbacks");
    down = true;
  });
  redis.on("ready", () => {
    down = false;
  });
  return redis;
}

/** True when the client can take commands now. */
export function redisReady(redis: Redis): boolean {
  return redis.status === "ready";
}
