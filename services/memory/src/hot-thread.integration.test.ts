import { randomBytes } from "node:crypto";
import { createRedis } from "@agent-runtime/stores";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HotThreads, type ThreadState } from "./hot-thread.js";

const prefix = `hot${randomBytes(4).toString("hex")}:`;
const redis = createRedis("redis://127.0.0.1:6379");
const hot = new HotThreads(redis, prefix, 3);

const entry = (seq: number) => ({
  id: `m${seq}`,
  seq,
  message: { role: "user" as const, content: `message ${seq}` },
  tokens: 6,
});
const state = (...seqs: number[]): ThreadState => ({
  found: true,
  summary: null,
  summaryTokens: 0,
  messages: seqs.map(entry),
  older: 0,
});

beforeAll(async () => {
  if (redis.status !== "ready") await new Promise((resolve) => redis.once("ready", resolve));
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe("hot thread copy", () => {
  it("refuses to cache a state read before an append that raced it", async () => {
    const reader = await hot.read("t", "race");
    expect(reader.state).toBeUndefined();
    // an append lands while the reader is still loading Postgres
    await hot.extend("t", "race", [entry(2)]);
    await hot.fill("t", "race", reader.version, state(1));
    expect((await hot.read("t", "race")).state).toBeUndefined();
    // the next reader caches the fresh state
    const next = await hot.read("t", "race");
    await hot.fill("t", "race", next.version, state(1, 2));
    expect((await hot.read("t", "race")).state?.messages.map((m) => m.seq)).toEqual([1, 2]);
  });

  it("extends the copy in order, once per message, keeping the newest and counting the rest", async () => {
    const reader = await hot.read("t", "window");
    await hot.fill("t", "window", reader.version, state(1, 2));
    await hot.extend("t", "window", [entry(4), entry(3)]);
    await hot.extend("t", "window", [entry(4)]); // a redelivered append
    await hot.extend("t", "window", [entry(5)]);
    const cached = (await hot.read("t", "window")).state;
    expect(cached?.messages.map((m) => m.seq)).toEqual([3, 4, 5]);
    expect(cached?.older).toBe(2);
  });

  it("drops the copy on invalidate", async () => {
    const reader = await hot.read("t", "gone");
    await hot.fill("t", "gone", reader.version, state(1));
    expect((await hot.read("t", "gone")).state).toBeDefined();
    await hot.invalidate("t", "gone");
    expect((await hot.read("t", "gone")).state).toBeUndefined();
  });
});
