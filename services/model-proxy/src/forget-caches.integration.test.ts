import { createHash, randomBytes } from "node:crypto";
import { type ModelChatRequest, ModelForgetRequest } from "@agent-runtime/contracts";
import { createRedis, type Redis } from "@agent-runtime/stores";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelCaches, responseCacheKey, textHash, userTag } from "./caches.js";
import { forgetModelCaches } from "./forget-caches.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
let redis: Redis;
let prefix: string;
let caches: ModelCaches;

const reply = (text: string) => ({
  message: { role: "assistant" as const, content: text },
  finishReason: "stop",
  usage: { promptTokens: 1, completionTokens: 1, cachedTokens: 0, totalTokens: 2 },
  costUsd: 0,
  model: "small",
  provider: "main",
  route: { tier: "fast", reason: "test" },
  latencyMs: 1,
  cached: false,
  retries: 0,
  fallbacks: 0,
});

const chat = (
  text: string,
  meta: { tenant?: string; userId?: string; threadId?: string },
): ModelChatRequest =>
  ({
    meta: {
      v: 1,
      tenant: meta.tenant ?? "acme",
      requestId: `r-${randomBytes(4).toString("hex")}`,
      deadline: Date.now() + 10_000,
      ...(meta.userId ? { userId: meta.userId } : {}),
      ...(meta.threadId ? { threadId: meta.threadId } : {}),
    },
    messages: [{ role: "user", content: text }],
    temperature: 0,
  }) as ModelChatRequest;

async function keys(pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", `${prefix}${pattern}`, "COUNT", 1000);
    cursor = next;
    found.push(...batch.map((key) => key.slice(prefix.length)));
  } while (cursor !== "0");
  return found.sort();
}

const forget = (request: Partial<Omit<ModelForgetRequest, "meta">>) =>
  forgetModelCaches(
    redis,
    prefix,
    ModelForgetRequest.parse({
      meta: { v: 1, tenant: "acme", requestId: "forget", deadline: Date.now() + 10_000 },
      ...request,
    }),
  );

beforeAll(async () => {
  redis = createRedis(REDIS_URL);
  await new Promise<void>((resolve) => redis.once("ready", () => resolve()));
  prefix = `forgetcache${randomBytes(4).toString("hex")}:`;
  caches = new ModelCaches(redis, prefix, {
    responseTtlSeconds: 60,
    embeddingTtlSeconds: 60,
    idempotencyTtlSeconds: 60,
  });
});

afterAll(async () => {
  const all = await keys("*");
  if (all.length > 0) await redis.del(...all.map((key) => `${prefix}${key}`));
  redis.disconnect();
});

describe("model.forget", () => {
  it("drops the cached answers and embeddings of end users, embeddings by text, and runs' and summaries' records", async () => {
    const ann = chat("ann asks", { userId: "ann", threadId: "one" });
    const annElsewhere = chat("ann elsewhere", { userId: "ann", threadId: "two" });
    const bob = chat("bob asks", { userId: "bob", threadId: "one" });
    const summary = chat("summary of thread one", { threadId: "one" });
    const otherTenant = chat("globex asks", { tenant: "globex", userId: "ann", threadId: "one" });
    for (const request of [ann, annElsewhere, bob, summary, otherTenant])
      await caches.putResponse(responseCacheKey(request, ["small"]), reply("answer"));
    const vector = [0.1, 0.2];
    await caches.putEmbeddings("acme", userTag("ann"), "embed:v1", [
      { hash: textHash("ann's query"), vector },
    ]);
    await caches.putEmbeddings("acme", userTag(undefined), "embed:v1", [
      { hash: textHash("chunk of a document"), vector },
      { hash: textHash("another chunk"), vector },
    ]);
    await caches.putIdempotent("acme", "run_1:0", reply("step"));
    await caches.putIdempotent("acme", "run_1:plan", reply("plan"));
    await caches.putIdempotent("acme", "run_10:0", reply("another run"));
    await caches.putIdempotent("acme", "summarize:one:123", reply("a summary"));
    await caches.putIdempotent("acme", "summarize:two:123", reply("another summary"));

    // a user: every answer and embedding made for them, in this tenant only
    const user = await forget({ userIds: ["ann"] });
    expect(user.deleted).toEqual({ responses: 2, idempotency: 0, embeddings: 1 });
    expect(await caches.getResponse(responseCacheKey(ann, ["small"]))).toBeUndefined();
    expect(await caches.getResponse(responseCacheKey(annElsewhere, ["small"]))).toBeUndefined();
    expect(await caches.getResponse(responseCacheKey(bob, ["small"]))).toBeDefined();
    expect(await caches.getResponse(responseCacheKey(otherTenant, ["small"]))).toBeDefined();

    // a thread: its runs' records and its summaries' records and answers (made without a user)
    const thread = await forget({ runIds: ["run_1"], threadIds: ["one"], userIds: [""] });
    expect(thread.deleted).toEqual({ responses: 1, idempotency: 3, embeddings: 2 });
    expect(await caches.getResponse(responseCacheKey(summary, ["small"]))).toBeUndefined();
    expect(await caches.getIdempotent("acme", "run_10:0")).toBeDefined();
    expect(await caches.getIdempotent("acme", "summarize:two:123")).toBeDefined();

    // a document: its chunks' embeddings by text
    await caches.putEmbeddings("acme", userTag(undefined), "embed:v1", [
      { hash: textHash("chunk of a document"), vector },
      { hash: textHash("another chunk"), vector },
    ]);
    const document = await forget({ textHashes: [textHash("chunk of a document")] });
    expect(document.deleted).toEqual({ responses: 0, idempotency: 0, embeddings: 1 });
    const [gone, kept] = await caches.getEmbeddings("acme", userTag(undefined), "embed:v1", [
      textHash("chunk of a document"),
      textHash("another chunk"),
    ]);
    expect(gone).toBeUndefined();
    expect(kept).toHaveLength(2);
    expect((await keys("*")).filter((key) => key.includes("globex"))).toHaveLength(1);
  });

  it("keys name end users only by hash, and not the thread", () => {
    const tag = userTag("ann@example.com");
    expect(tag).toBe(`u${createHash("sha256").update("ann@example.com").digest("hex").slice(0, 24)}`);
    const key = responseCacheKey(chat("same words", { userId: "ann@example.com", threadId: "t1" }), [
      "small",
    ]);
    expect(key).not.toContain("ann");
    // another thread of the same user hits the same entry (chat turns get a new thread each time)
    expect(
      responseCacheKey(chat("same words", { userId: "ann@example.com", threadId: "t2" }), ["small"]),
    ).toBe(key);
  });

  it("fails as unavailable, deleting nothing, when Redis cannot be reached", async () => {
    const away = createRedis("redis://127.0.0.1:1");
    try {
      await expect(
        forgetModelCaches(
          away,
          prefix,
          ModelForgetRequest.parse({
            meta: { v: 1, tenant: "acme", requestId: "forget", deadline: Date.now() + 10_000 },
            userIds: ["bob"],
          }),
        ),
      ).rejects.toMatchObject({ code: "unavailable", retryable: true });
    } finally {
      away.disconnect();
    }
  });
});
