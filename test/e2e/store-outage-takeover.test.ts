/**
 * A run that must read its store before it starts (a runs-API run) while Postgres stays away past
 * its deadline: its client hears a typed failure at the deadline, not its own timeout,
 * and once the store is back the run's row says it failed; it is never left `running`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../support/stack.js";
import { type StackBehindStoreProxy, startStackBehindStoreProxy } from "../support/store-outage.js";
import type { TcpProxy } from "../support/tcp-proxy.js";

const KEY = "sk-outage-takeover";
let fake: FakeOpenAI;
let behind: StackBehindStoreProxy;
let stack: Stack;
let proxy: TcpProxy;
let db: pg.Client;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler(() => ({ content: "never asked" }));
  behind = await startStackBehindStoreProxy({
    bootstrapApiKey: KEY,
    openaiBaseUrl: fake.url,
    env: { RUN_TIMEOUT_MS: "2000" },
  });
  ({ stack, proxy, db } = behind);
  // the key is looked up (and cached) before the outage
  const warm = await fetch(`${stack.url}/v1/runs`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ agent: "assistant", input: "warm up", wait: true }),
  });
  expect(warm.status).toBe(200);
}, 60_000);

afterAll(async () => {
  await behind?.stop();
  await fake?.close();
});

describe("store outage past a run's deadline", () => {
  it("tells the client at the deadline with a typed error and records the run failed once the store is back", async () => {
    proxy.down();
    const response = await fetch(`${stack.url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ agent: "assistant", input: "while the store is away", wait: true }),
    });
    const body = (await response.json()) as {
      id?: string;
      status?: string;
      error?: { code: string; retryable?: boolean };
    };
    // at the run's deadline: the store's unavailability, or the deadline itself when ingress stops first
    expect([503, 504]).toContain(response.status);
    expect(["unavailable", "timeout", "deadline_exceeded"]).toContain(body.error?.code);
    expect(fake.chatRequests().some((request) => JSON.stringify(request).includes("while the store"))).toBe(
      false,
    );
    proxy.up();
    // the worker held the message and writes the failure as soon as the store answers
    let rows: { status: string }[] = [];
    for (let i = 0; i < 200; i++) {
      rows = (
        await db.query<{ status: string }>(
          "SELECT status FROM runs WHERE request->>'input' LIKE '%while the store%'",
        )
      ).rows;
      if (rows.length > 0 && rows.every((row) => row.status !== "running" && row.status !== "queued")) break;
      await sleep(100);
    }
    expect(rows.map((row) => row.status)).toEqual(["failed"]);
  }, 60_000);
});
