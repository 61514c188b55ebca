/**
 * Postgres goes away while turns are in flight (every service reaches it through a proxy the test
 * cuts): each run waits for the store with backoff, within its deadline, and every client gets its
 * answer once the store is back; none waits for its own timeout, no run stays `running`. Data the
 * store refuses fails its run at once with a typed error instead.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../support/stack.js";
import { type StackBehindStoreProxy, startStackBehindStoreProxy } from "../support/store-outage.js";
import type { TcpProxy } from "../support/tcp-proxy.js";

const KEY = "sk-outage-tests";
let fake: FakeOpenAI;
let behind: StackBehindStoreProxy;
let proxy: TcpProxy;
let stack: Stack;
let client: OpenAI;
let db: pg.Client;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler(() => ({ content: "still here", latencyMs: 400 }));
  behind = await startStackBehindStoreProxy({
    bootstrapApiKey: KEY,
    openaiBaseUrl: fake.url,
    env: { RUN_TIMEOUT_MS: "30000" },
  });
  ({ stack, proxy, db } = behind);
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 45_000 });
  // the key is looked up (and cached) before the outage
  await client.chat.completions.create({ model: "assistant", messages: [{ role: "user", content: "hi" }] });
}, 60_000);

afterAll(async () => {
  await behind?.stop();
  await fake?.close();
});

describe("store outage", () => {
  it("answers every turn in flight once Postgres is back, none hanging or left running", async () => {
    const started = Date.now();
    const turns = Array.from({ length: 12 }, (_, index) =>
      client.chat.completions
        .create({ model: "assistant", messages: [{ role: "user", content: `turn ${index}` }] })
        .then(
          (completion) => ({ ok: true as const, completion, at: Date.now() - started }),
          (error: unknown) => ({ ok: false as const, error, at: Date.now() - started }),
        ),
    );
    await sleep(150);
    proxy.down();
    await sleep(5000);
    proxy.up();
    const results = await Promise.all(turns);
    for (const result of results) {
      expect(result.ok, String(result.ok ? "" : result.error)).toBe(true);
      if (result.ok) expect(result.completion.choices[0]?.message.content).toBe("still here");
      // answered after the store came back, well inside the 30 s run deadline
      expect(result.at).toBeLessThan(15_000);
    }
    const runs = await db.query<{ status: string; count: number }>(
      "SELECT status, count(*)::int AS count FROM runs GROUP BY status",
    );
    expect(runs.rows).toEqual([{ status: "completed", count: 13 }]);
    // each turn's thread holds it too: memory stores the journaled turns once the store is back
    const countThreads = () =>
      db.query<{ messages: number }>("SELECT count(*)::int AS messages FROM messages GROUP BY thread_id");
    let threads = await countThreads();
    for (let i = 0; i < 300 && threads.rows.length < 13; i++) {
      await sleep(100);
      threads = await countThreads();
    }
    expect(threads.rows).toHaveLength(13);
    expect(threads.rows.every((row) => row.messages === 2)).toBe(true);
  }, 60_000);

  it("fails a turn whose data the store refuses at once with a typed error", async () => {
    const started = Date.now();
    const failure = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "bad \ud800 text" }] })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    const status = (failure as InstanceType<typeof OpenAI.APIError>).status;
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).not.toBe(504);
  }, 30_000);
});
