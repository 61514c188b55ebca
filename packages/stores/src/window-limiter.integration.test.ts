import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedis } from "./redis.js";
import { aWindow, describeWindowLimiter, MINUTE, taken } from "./test-support/window-limiter-cases.js";
import { WindowLimiter } from "./window-limiter.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const redis = createRedis(REDIS_URL);
const prefix = `wlim${randomUUID().slice(0, 8)}:`;
const counter = (name: string, limit: number, amount?: number) => ({
  key: (window: number) => `${prefix}${name}:${window}`,
  limit,
  ...(amount === undefined ? {} : { amount }),
});

beforeAll(async () => {
  if (redis.status !== "ready") await new Promise((resolve) => redis.once("ready", resolve));
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describeWindowLimiter("Redis", () => redis, true, prefix);

describe("window limiter across replicas (Redis)", () => {
  it("shares counters, leases and holds", async () => {
    const one = new WindowLimiter(redis, { windowMs: MINUTE });
    const other = new WindowLimiter(redis, { windowMs: MINUTE });
    const now = aWindow() + 1000;
    const rate = counter("shared-rate", 2);
    expect(taken(await one.take({ counts: [rate], now }))).toBe(true);
    expect(taken(await other.take({ counts: [rate], now }))).toBe(true);
    expect(taken(await one.take({ counts: [rate], now }))).toBe(false);
    const lease = { key: `${prefix}shared-lease`, limit: 1 };
    expect(taken(await one.take({ leases: [lease], leaseMs: 60_000 }))).toBe(true);
    expect(taken(await other.take({ leases: [lease], leaseMs: 60_000 }))).toBe(false);
    await one.hold(`${prefix}shared-hold`, 5000);
    expect(other.heldFor(`${prefix}shared-hold`)).toBe(0);
    expect(await other.take({ hold: `${prefix}shared-hold` })).toMatchObject({
      taken: false,
      refusedBy: "hold",
    });
  });
});

describe("window limiter leases (Redis)", () => {
  it("keeps the holders' set as long as its longest lease, and a release is done when it resolves", async () => {
    const limiter = new WindowLimiter(redis);
    const key = `${prefix}long-lease`;
    const long = await limiter.take({ leases: [{ key, limit: 2 }], leaseMs: 120_000 });
    expect(taken(await limiter.take({ leases: [{ key, limit: 2 }], leaseMs: 300 }))).toBe(true);
    expect(await redis.pttl(key)).toBeGreaterThan(120_000);
    if (long.taken) await long.release();
    expect(await redis.zcard(key)).toBe(1);
  });
});
