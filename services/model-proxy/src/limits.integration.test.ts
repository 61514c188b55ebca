import { randomUUID } from "node:crypto";
import { ProviderConfig } from "@agent-runtime/config";
import { createRedis, type Redis } from "@agent-runtime/stores";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProviderLimiter } from "./limits.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `test:mplim:${randomUUID().slice(0, 8)}:`;
let replicaA: Redis;
let replicaB: Redis;

async function ready(redis: Redis): Promise<void> {
  if (redis.status !== "ready") await new Promise((resolve) => redis.once("ready", resolve));
}

beforeAll(async () => {
  replicaA = createRedis(REDIS_URL);
  replicaB = createRedis(REDIS_URL);
  await Promise.all([ready(replicaA), ready(replicaB)]);
});

afterAll(async () => {
  const keys = await replicaA.keys(`${prefix}*`);
  if (keys.length > 0) await replicaA.del(...keys);
  replicaA.disconnect();
  replicaB.disconnect();
});

/** Waits out the end of a minute so a test's counts stay in one window. */
async function insideOneWindow(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 57_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 50));
}

describe("provider limits in Redis", () => {
  it("shares an RPM window between replicas and says how long to wait", async () => {
    await insideOneWindow();
    const config = ProviderConfig.parse({ baseUrl: "http://x.invalid", rpm: 3 });
    const a = new ProviderLimiter(replicaA, prefix);
    const b = new ProviderLimiter(replicaB, prefix);
    const verdicts = [
      await a.acquire("rpm-p", config, 10),
      await b.acquire("rpm-p", config, 10),
      await a.acquire("rpm-p", config, 10),
      await b.acquire("rpm-p", config, 10),
    ];
    expect(verdicts.map((verdict) => verdict.allowed)).toEqual([true, true, true, false]);
    expect(verdicts[3]).toMatchObject({ which: "rpm" });
    expect(verdicts[3]!.waitMs).toBeGreaterThan(0);
    expect(verdicts[3]!.waitMs).toBeLessThanOrEqual(60_000);
  });

  it("counts estimated tokens against TPM and corrects them with the real usage", async () => {
    await insideOneWindow();
    const config = ProviderConfig.parse({ baseUrl: "http://x.invalid", tpm: 250 });
    const limiter = new ProviderLimiter(replicaA, prefix);
    expect((await limiter.acquire("tpm-p", config, 100)).allowed).toBe(true);
    expect((await limiter.acquire("tpm-p", config, 100)).allowed).toBe(true);
    const refused = await limiter.acquire("tpm-p", config, 100);
    expect(refused).toMatchObject({ allowed: false, which: "tpm" });
    // both calls turned out far smaller than estimated
    await limiter.settle("tpm-p", config, 100, 20);
    await limiter.settle("tpm-p", config, 100, 20);
    expect((await limiter.acquire("tpm-p", config, 100)).allowed).toBe(true);
  });

  it("lets one oversized prompt through an empty window instead of refusing it forever", async () => {
    await insideOneWindow();
    const config = ProviderConfig.parse({ baseUrl: "http://x.invalid", tpm: 50 });
    const limiter = new ProviderLimiter(replicaA, prefix);
    expect((await limiter.acquire("big-p", config, 500)).allowed).toBe(true);
    expect((await limiter.acquire("big-p", config, 1)).allowed).toBe(false);
  });

  it("holds every replica off a provider that answered 429, for its Retry-After", async () => {
    const config = ProviderConfig.parse({ baseUrl: "http://x.invalid", rpm: 1000 });
    const a = new ProviderLimiter(replicaA, prefix);
    const b = new ProviderLimiter(replicaB, prefix);
    await a.cooldown("hot-p", 300);
    const held = await b.acquire("hot-p", config, 1);
    expect(held).toMatchObject({ allowed: false, which: "cooldown" });
    expect(held.waitMs).toBeGreaterThan(200);
    expect(held.waitMs).toBeLessThanOrEqual(300);
    // a shorter cooldown from another replica does not cut it short
    await b.cooldown("hot-p", 10);
    expect((await a.acquire("hot-p", config, 1)).allowed).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 320));
    expect((await b.acquire("hot-p", config, 1)).allowed).toBe(true);
  });

  it("falls back to per-process limits when Redis is unreachable", async () => {
    const dead = createRedis("redis://127.0.0.1:1");
    dead.on("error", () => undefined);
    try {
      const config = ProviderConfig.parse({ baseUrl: "http://x.invalid", rpm: 2 });
      const limiter = new ProviderLimiter(dead, prefix);
      const verdicts = await Promise.all([1, 2, 3].map(() => limiter.acquire("local-p", config, 1)));
      expect(verdicts.filter((verdict) => verdict.allowed)).toHaveLength(2);
      await limiter.cooldown("local-p", 200); // still honoured in this process
      expect(
        (await limiter.acquire("local-p", ProviderConfig.parse({ baseUrl: "http://x.invalid" }), 1)).which,
      ).toBe("cooldown");
    } finally {
      dead.disconnect();
    }
  });
});

describe("provider limits by lane", () => {
  it("stops batch calls at their share of the window and keeps the rest for interactive ones", async () => {
    await insideOneWindow();
    const config = ProviderConfig.parse({ baseUrl: "http://x.invalid", rpm: 10, tpm: 1000 });
    const a = new ProviderLimiter(replicaA, prefix, 0.8);
    const b = new ProviderLimiter(replicaB, prefix, 0.8);
    const batch = [];
    for (let i = 0; i < 10; i++) batch.push(await (i % 2 ? a : b).acquire("lane-p", config, 10, "batch"));
    // 8 of 10 requests for batch, across replicas
    expect(batch.filter((verdict) => verdict.allowed)).toHaveLength(8);
    expect(batch.at(-1)).toMatchObject({ allowed: false, which: "rpm" });
    // the headroom is there for interactive calls, up to the provider's own limit
    expect((await a.acquire("lane-p", config, 10, "interactive")).allowed).toBe(true);
    expect((await b.acquire("lane-p", config, 10)).allowed).toBe(true);
    expect((await a.acquire("lane-p", config, 10, "interactive")).allowed).toBe(false);
  });

  it("applies the share to TPM, and per process when Redis is down", async () => {
    await insideOneWindow();
    const config = ProviderConfig.parse({ baseUrl: "http://x.invalid", tpm: 1000 });
    const limiter = new ProviderLimiter(replicaA, prefix, 0.5);
    expect((await limiter.acquire("lane-tpm", config, 400, "batch")).allowed).toBe(true);
    expect(await limiter.acquire("lane-tpm", config, 400, "batch")).toMatchObject({
      allowed: false,
      which: "tpm",
    });
    expect((await limiter.acquire("lane-tpm", config, 400, "interactive")).allowed).toBe(true);

    const dead = createRedis("redis://127.0.0.1:1");
    dead.on("error", () => undefined);
    try {
      const local = new ProviderLimiter(dead, prefix, 0.5);
      const rpm = ProviderConfig.parse({ baseUrl: "http://x.invalid", rpm: 4 });
      const verdicts = [];
      for (let i = 0; i < 3; i++) verdicts.push((await local.acquire("lane-local", rpm, 1, "batch")).allowed);
      expect(verdicts).toEqual([true, true, false]);
      expect((await local.acquire("lane-local", rpm, 1, "interactive")).allowed).toBe(true);
    } finally {
      dead.disconnect();
    }
  });

  it("never scales a limit to zero, which would mean no limit", () => {
    const limiter = new ProviderLimiter(replicaA, prefix, 0.1);
    const config = ProviderConfig.parse({ baseUrl: "http://x.invalid", rpm: 3 });
    expect(limiter.limitsFor(config, "batch")).toEqual({ rpm: 1, tpm: undefined });
    expect(limiter.limitsFor(config, "interactive")).toEqual({ rpm: 3, tpm: undefined });
  });
});
