import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore } from "@agent-runtime/ingress";
import { createPool } from "@agent-runtime/stores";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import OpenAI from "openai";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { DATABASE_URL } from "../support/isolation.js";
import { type Stack, startStack } from "../support/stack.js";

const KEY = "sk-ingress-tests-acme";
let fake: FakeOpenAI;
let stack: Stack;
let pool: pg.Pool;
let otherKey: string;
let eventsOnlyKey: string;
let limitedKey: string;
let quotaKey: string;

const http = (path: string, init: RequestInit & { key?: string | null } = {}) => {
  const headers = new Headers(init.headers);
  if (init.key !== null) headers.set("authorization", `Bearer ${init.key ?? KEY}`);
  if (init.body && !headers.has("content-type")) headers.set("content-type", "application/json");
  return fetch(`${stack.url}${path}`, { ...init, headers });
};

beforeAll(async () => {
  fake = await startFakeOpenAI();
  fake.setHandler(() => ({ content: "one two three four five six seven eight", chunkDelayMs: 5 }));
  const configPath = join(mkdtempSync(join(tmpdir(), "ingress-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      agents: { notifier: { triggers: ["com.example.signup"], tools: [] } },
      limits: {
        tenants: { limited: { requestsPerMinute: 3 }, quota: { tokensPerDay: 10 } },
        maxBodyBytes: 64 * 1024,
      },
    }),
  );
  stack = await startStack({
    bootstrapApiKey: KEY,
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: configPath, KEY_CACHE_MS: "300" },
  });
  pool = await createPool({ url: DATABASE_URL, schema: stack.isolation.schema, max: 2 });
  const keys = await KeyStore.open(pool, 0);
  otherKey = (await keys.create("other", ["chat", "runs", "events"], "other")).key;
  eventsOnlyKey = (await keys.create("acme", ["events"], "events only")).key;
  limitedKey = (await keys.create("limited", ["chat", "runs", "events"], "limited")).key;
  quotaKey = (await keys.create("quota", ["chat", "runs"], "quota")).key;
});

afterAll(async () => {
  await pool?.end();
  await stack?.stop();
  await fake?.close();
});

async function expectError(response: Response, status: number, type?: RegExp) {
  expect(response.status).toBe(status);
  const body = (await response.json()) as { error: { type: string; message: string } };
  expect(body.error.message.length).toBeGreaterThan(0);
  if (type) expect(body.error.type).toMatch(type);
  expect(JSON.stringify(body)).not.toMatch(/\bat .+\.(ts|js):\d+/);
  return body;
}

describe("ingress errors", () => {
  it("answers each failure with its status and an error body", async () => {
    await expectError(
      await http("/v1/chat/completions", { method: "POST", body: "{}", key: null }),
      401,
      /authentication/,
    );
    await expectError(await http("/v1/chat/completions", { method: "POST", body: "{}", key: "nope" }), 401);
    const invalid = await expectError(
      await http("/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ messages: [{ role: "user" }] }),
      }),
      400,
      /invalid_request/,
    );
    expect(invalid.error.message).toMatch(/messages\[0\]/);
    await expectError(await http("/v1/chat/completions", { method: "POST", body: "{not json" }), 400);
    await expectError(
      await http("/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ model: "ghost", messages: [{ role: "user", content: "x" }] }),
      }),
      404,
    );
    await expectError(
      await http("/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ messages: [{ role: "user", content: "x" }] }),
        key: eventsOnlyKey,
      }),
      403,
      /permission/,
    );
    await expectError(await http("/v1/runs/run_missing"), 404);
    await expectError(await http("/v1/nowhere"), 404);
    await expectError(
      await http("/v1/runs", { method: "POST", body: JSON.stringify({ input: "x".repeat(70 * 1024) }) }),
      413,
    );
    for (let i = 0; i < 3; i++) {
      expect(
        (
          await http("/v1/runs", {
            method: "POST",
            body: JSON.stringify({ input: "hi", wait: true }),
            key: limitedKey,
          })
        ).status,
      ).toBe(200);
    }
    const limited = await http("/v1/runs", {
      method: "POST",
      body: JSON.stringify({ input: "hi" }),
      key: limitedKey,
    });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    const body = await expectError(limited, 429, /rate_limit/);
    expect(body.error.message).toMatch(/tenant requests per minute/);
  });

  it("stops accepting a revoked key within the key cache time", async () => {
    const keys = await KeyStore.open(pool, 0);
    const made = await keys.create("acme", ["chat"], "short-lived");
    const ask = () => http("/v1/models", { key: made.key });
    expect((await ask()).status).toBe(200);
    expect(await keys.revoke(made.id)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await expectError(await ask(), 401);
  });

  it("enforces a tokens-per-day quota from the usage records", async () => {
    const ask = () =>
      http("/v1/runs", {
        method: "POST",
        body: JSON.stringify({ input: "spend tokens", wait: true }),
        key: quotaKey,
      });
    const first = await ask();
    expect(first.status).toBe(200);
    // nothing spent before this run: the whole day's quota is left
    expect(first.headers.get("x-ratelimit-limit-tokens")).toBe("10");
    expect(first.headers.get("x-ratelimit-remaining-tokens")).toBe("10");
    expect(first.headers.get("x-ratelimit-reset-tokens")).toMatch(/^(\d+h)?(\d+m)?\d+s$/);
    // usage is folded into the aggregates asynchronously; spend totals are re-read every 5 s
    await new Promise((resolve) => setTimeout(resolve, 5500));
    const over = await ask();
    const body = await expectError(over, 429, /rate_limit/);
    expect(body.error.message).toMatch(/tokens per day/);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(over.headers.get("x-ratelimit-limit-tokens")).toBe("10");
    expect(over.headers.get("x-ratelimit-remaining-tokens")).toBe("0");
    // the official client hands the same headers over on its RateLimitError
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: quotaKey, maxRetries: 0 });
    const refused = await client.chat.completions
      .create({ model: "assistant", messages: [{ role: "user", content: "x" }] })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(
      (refused as InstanceType<typeof OpenAI.RateLimitError>).headers.get("x-ratelimit-remaining-tokens"),
    ).toBe("0");
  });

  it("surfaces errors through the official openai client", async () => {
    const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const error = await client.chat.completions
      .create({ model: "ghost", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    const models = await client.models.list();
    expect(models.data.map((model) => model.id)).toEqual(expect.arrayContaining(["assistant", "notifier"]));
  });

  it("keeps tenants apart: another tenant's run and thread are not found", async () => {
    const created = await http("/v1/runs", {
      method: "POST",
      body: JSON.stringify({ input: "private", wait: true }),
    });
    const run = (await created.json()) as { id: string; thread_id: string; status: string };
    expect(run.status).toBe("completed");
    expect((await http(`/v1/runs/${run.id}`)).status).toBe(200);
    await expectError(await http(`/v1/runs/${run.id}`, { key: otherKey }), 404);
    await expectError(await http(`/v1/runs/${run.id}/cancel`, { method: "POST", key: otherKey }), 404);
    await expectError(await http(`/v1/runs/${run.id}/events`, { key: otherKey }), 404);
    await expectError(await http(`/v1/threads/${run.thread_id}/messages`, { key: otherKey }), 404);
    await expectError(await http(`/v1/threads/${run.thread_id}`, { method: "DELETE", key: otherKey }), 404);
    const mine = await http(`/v1/threads/${run.thread_id}/messages`);
    expect(((await mine.json()) as { data: unknown[] }).data).toHaveLength(2);
    const listed = (await (await http(`/v1/runs?thread_id=${run.thread_id}`)).json()) as {
      data: { id: string; object: string }[];
    };
    expect(listed.data.map((entry) => [entry.id, entry.object])).toEqual([[run.id, "run"]]);
    expect(
      ((await (await http("/v1/runs", { key: otherKey })).json()) as { data: unknown[] }).data,
    ).toHaveLength(0);
  });

  it("resumes a run's event stream after a cut without losing an event", async () => {
    const created = await http("/v1/runs", { method: "POST", body: JSON.stringify({ input: "stream me" }) });
    expect(created.status).toBe(202);
    const { id } = (await created.json()) as { id: string };
    // read part of the stream, then drop the connection
    const controller = new AbortController();
    const first = await http(`/v1/runs/${id}/events`, { signal: controller.signal });
    const reader = first.body!.getReader();
    let text = "";
    expect(first.status).toBe(200);
    while (!text.includes("\n\n")) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
    }
    controller.abort();
    // the cut comes after the first event (one chunk may carry more: they count as lost)
    const firstEvent = text.slice(0, text.indexOf("\n\n"));
    const firstIds = [...firstEvent.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    expect(firstIds.length).toBeGreaterThan(0);
    const lastSeen = firstIds.at(-1)!;
    const resumed = await (
      await http(`/v1/runs/${id}/events`, { headers: { "last-event-id": String(lastSeen) } })
    ).text();
    const full = await (await http(`/v1/runs/${id}/events`)).text();
    const ids = (body: string) => [...body.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    expect([...firstIds, ...ids(resumed)]).toEqual(ids(full));
    expect(resumed).toMatch(/event: run-finished/);
    // resuming after the last event of a finished run ends at once with nothing more
    const after = await http(`/v1/runs/${id}/events`, {
      headers: { "last-event-id": String(ids(full).at(-1)) },
    });
    expect(await after.text()).toBe("");
  });

  it("accepts an event once per id and starts one run", async () => {
    const event = {
      specversion: "1.0",
      id: `evt-${randomUUID()}`,
      source: "https://shop.example/api",
      type: "com.example.signup",
      data: { user: "ada" },
    };
    const first = await http("/v1/events", { method: "POST", body: JSON.stringify(event) });
    const second = await http("/v1/events", { method: "POST", body: JSON.stringify([event]) });
    expect(first.status).toBe(202);
    expect(((await first.json()) as { accepted: { duplicate: boolean }[] }).accepted[0]?.duplicate).toBe(
      false,
    );
    expect(((await second.json()) as { accepted: { duplicate: boolean }[] }).accepted[0]?.duplicate).toBe(
      true,
    );
    let runs: { agent: string; status: string }[] = [];
    for (let i = 0; i < 100; i++) {
      runs = (
        (await (await http("/v1/runs?agent=notifier")).json()) as {
          data: { agent: string; status: string }[];
        }
      ).data;
      if (runs.length > 0 && runs[0]?.status === "completed") break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(runs).toHaveLength(1);
    await expectError(
      await http("/v1/events", { method: "POST", body: JSON.stringify({ id: "x", type: "t" }) }),
      400,
    );
  });

  it("serves OpenAPI, stats and the dashboard", async () => {
    const openapi = (await (await http("/openapi.json", { key: null })).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(["/v1/chat/completions", "/v1/runs", "/v1/events"]),
    );
    const dashboard = await http("/dashboard", { key: null });
    expect(dashboard.headers.get("content-type")).toMatch(/text\/html/);
    let stats: { totals: { calls: number; tokens: number } } | undefined;
    for (let i = 0; i < 50; i++) {
      stats = (await (await http("/v1/stats")).json()) as { totals: { calls: number; tokens: number } };
      if (stats.totals.calls > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(stats?.totals.calls).toBeGreaterThan(0);
    expect(stats?.totals.tokens).toBeGreaterThan(0);
    const metrics = await (await fetch(`${stack.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/http_requests_total/);
    expect((await http("/metrics", { key: null })).status).toBe(404);
  });

  it("never answers malformed input with a 5xx or a crash", async () => {
    const bodies: (string | Uint8Array)[] = [
      "",
      "null",
      "[]",
      "42",
      '"str"',
      "{",
      '{"messages":null}',
      '{"messages":[{"role":"user","content":{"x":1}}]}',
      '{"messages":[{"role":"user","content":"hi"}],"stream":"yes"}',
      '{"messages":[{"role":"user","content":"hi"}],"temperature":9}',
      '{"model":123,"messages":[]}',
      "\u0000\u0001\u0002",
      "\uFEFF{}",
      '{"__proto__":{"polluted":1},"messages":[]}',
      new Uint8Array([0xff, 0xfe, 0xfd, 0x00, 0x7b]),
      JSON.stringify({ messages: [{ role: "user", content: "x".repeat(200_000) }] }),
      `{"messages":${"[".repeat(5000)}${"]".repeat(5000)}}`,
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let i = 0; i < 60; i++) {
      const length = Math.floor(random() * 80);
      bodies.push(Array.from({ length }, () => String.fromCharCode(Math.floor(random() * 256))).join(""));
    }
    for (const path of ["/v1/chat/completions", "/v1/runs", "/v1/events"]) {
      for (const body of bodies) {
        for (const contentType of ["application/json", "application/json; charset=latin1", "text/plain"]) {
          const response = await http(path, {
            method: "POST",
            body,
            headers: { "content-type": contentType },
          });
          expect(response.status, `${path} ${contentType} ${String(body).slice(0, 40)}`).toBeLessThan(500);
          await response.arrayBuffer();
        }
      }
    }
    expect((await http("/healthz", { key: null })).status).toBe(200);
  });
});
