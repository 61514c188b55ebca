import { afterAll, describe, expect, it, vi } from "vitest";
import { JsonCache } from "./json-cache.js";
import { createRedis } from "./redis.js";
import { AnswerSchema } from "./test-support/answer-schema.js";

// nothing listens there: the cache answers from the process, or misses, as it does while Redis is down
const down = createRedis("redis://127.0.0.1:1");

afterAll(() => {
  down.disconnect();
});

describe("JSON cache (Redis down)", () => {
  it("misses without local entries", async () => {
    const cache = new JsonCache(down, { schema: AnswerSchema });
    await cache.set("k", { text: "x", n: 1 }, 30);
    expect(await cache.get("k")).toBeUndefined();
  });

  it("answers from the process, the oldest entry dropped past the bound", async () => {
    const cache = new JsonCache(down, { schema: AnswerSchema, localEntries: 2 });
    await cache.set("a", { text: "a", n: 1 }, 30);
    await cache.set("b", { text: "b", n: 2 }, 30);
    await cache.set("a", { text: "a again", n: 3 }, 30);
    await cache.set("c", { text: "c", n: 4 }, 30);
    expect(await cache.get("b")).toBeUndefined();
    expect(await cache.get("a")).toEqual({ text: "a again", n: 3 });
    expect(await cache.get("c")).toEqual({ text: "c", n: 4 });
  });

  it("lets a local entry expire with its time to live", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const cache = new JsonCache(down, { schema: AnswerSchema, localEntries: 2 });
      await cache.set("a", { text: "a", n: 1 }, 5);
      vi.advanceTimersByTime(4_999);
      expect(await cache.get("a")).toEqual({ text: "a", n: 1 });
      vi.advanceTimersByTime(1);
      expect(await cache.get("a")).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});
