import { randomUUID } from "node:crypto";
import { createRedis, type Redis } from "@agent-runtime/stores";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ToolSlots } from "./tool-slots.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let redis: Redis;
let down: Redis;
const prefix = `tslots${randomUUID().slice(0, 8)}:`;

beforeAll(async () => {
  redis = createRedis(REDIS_URL);
  await new Promise<void>((resolve) => {
    if (redis.status === "ready") resolve();
    else redis.once("ready", () => resolve());
  });
  // nothing listens there: the slots fall back to this process
  down = createRedis("redis://127.0.0.1:1");
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  down.disconnect();
});

describe("tool concurrency slots", () => {
  it("frees a slot whose holder never gives it back once the holder's time is up (Redis)", async () => {
    // two replicas sharing one Redis; the first "crashes" holding both slots
    const crashed = new ToolSlots(redis, prefix, 0);
    const survivor = new ToolSlots(redis, prefix, 0);
    expect(await crashed.take("lookup", 2, "interactive", 0, 400)).toBeDefined();
    expect(await crashed.take("lookup", 2, "interactive", 0, 400)).toBeDefined();
    expect(await survivor.take("lookup", 2, "interactive", 0, 400)).toBeUndefined();
    const holders = await redis.zcard(`${prefix}tslots:lookup`);
    expect(holders).toBe(2);
    await sleep(500);
    // the holders' deadlines passed: they count no more
    const release = await survivor.take("lookup", 2, "interactive", 0, 5000);
    expect(release).toBeDefined();
    expect(await redis.zcard(`${prefix}tslots:lookup`)).toBe(1);
    await release!();
    expect(await redis.zcard(`${prefix}tslots:lookup`)).toBe(0);
  });

  it("counts only live holders while others come and go, and a release frees at once", async () => {
    const slots = new ToolSlots(redis, prefix, 0);
    const first = await slots.take("busy", 1, "interactive", 0, 10_000);
    expect(first).toBeDefined();
    expect(await slots.take("busy", 1, "interactive", 0, 10_000)).toBeUndefined();
    await first!();
    const second = await slots.take("busy", 1, "interactive", 0, 10_000);
    expect(second).toBeDefined();
    await second!();
    // a holder's entry keeps the key alive no longer than the longest hold
    const pttl = await redis.pttl(`${prefix}tslots:busy`);
    expect(pttl).toBeLessThanOrEqual(10_000);
  });

  it("a batch call waiting in line gets the slot when a lost holder's time is up", async () => {
    const crashed = new ToolSlots(redis, prefix, 0);
    const waiting = new ToolSlots(redis, prefix, 0);
    expect(await crashed.take("queue", 1, "batch", 0, 300)).toBeDefined();
    const started = Date.now();
    const release = await waiting.take("queue", 1, "batch", Date.now() + 3000, 1000);
    expect(release).toBeDefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(Date.now() - started).toBeLessThan(2000);
    await release!();
  });

  it("with Redis down, holds slots in the process with the same expiry", async () => {
    const slots = new ToolSlots(down, prefix, 0);
    expect(await slots.take("local", 1, "interactive", 0, 300)).toBeDefined();
    expect(await slots.take("local", 1, "interactive", 0, 300)).toBeUndefined();
    await sleep(350);
    const release = await slots.take("local", 1, "interactive", 0, 300);
    expect(release).toBeDefined();
    await release!();
    expect(await slots.take("local", 1, "interactive", 0, 300)).toBeDefined();
  });
});
