import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JsonCache } from "./json-cache.js";
import { createRedis } from "./redis.js";
import { AnswerSchema } from "./test-support/answer-schema.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const redis = createRedis(REDIS_URL);
const prefix = `jcache${randomUUID().slice(0, 8)}:`;

beforeAll(async () => {
  if (redis.status !== "ready") await new Promise((resolve) => redis.once("ready", resolve));
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe("JSON cache (Redis)", () => {
  it("shares a value between replicas for its time to live", async () => {
    const one = new JsonCache(redis, { schema: AnswerSchema });
    const other = new JsonCache(redis, { schema: AnswerSchema });
    await one.set(`${prefix}a`, { text: "four", n: 4 }, 30);
    expect(await other.get(`${prefix}a`)).toEqual({ text: "four", n: 4 });
    const ttl = await redis.pttl(`${prefix}a`);
    expect(ttl).toBeGreaterThan(29_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
    expect(await other.get(`${prefix}missing`)).toBeUndefined();
  });

  it("takes an entry that does not pass the schema, or is not JSON, for a miss", async () => {
    const cache = new JsonCache(redis, { schema: AnswerSchema, localEntries: 10 });
    await redis.set(`${prefix}wrong`, JSON.stringify({ text: 4 }));
    await redis.set(`${prefix}broken`, "{not json");
    expect(await cache.get(`${prefix}wrong`)).toBeUndefined();
    expect(await cache.get(`${prefix}broken`)).toBeUndefined();
  });

  it("keeps nothing for a time to live of 0 and refuses one that is not a whole number", async () => {
    const cache = new JsonCache(redis, { schema: AnswerSchema, localEntries: 10 });
    await cache.set(`${prefix}none`, { text: "x", n: 1 }, 0);
    expect(await redis.exists(`${prefix}none`)).toBe(0);
    await expect(cache.set(`${prefix}none`, { text: "x", n: 1 }, 1.5)).rejects.toThrow(RangeError);
    await expect(cache.set(`${prefix}none`, { text: "x", n: 1 }, -1)).rejects.toThrow("whole number");
    expect(() => new JsonCache(redis, { schema: AnswerSchema, localEntries: -1 })).toThrow(RangeError);
  });
});

describe("JSON cache (Redis failing)", () => {
  it("answers from the process when a Redis command fails", async () => {
    const cache = new JsonCache(redis, { schema: AnswerSchema, localEntries: 10 });
    await cache.set(`${prefix}f`, { text: "f", n: 1 }, 30);
    // the key now holds a hash: Redis answers GET with a WRONGTYPE error
    await redis.del(`${prefix}f`);
    await redis.hset(`${prefix}f`, "field", "1");
    expect(await cache.get(`${prefix}f`)).toEqual({ text: "f", n: 1 });
    expect(await new JsonCache(redis, { schema: AnswerSchema }).get(`${prefix}f`)).toBeUndefined();
  });
});
