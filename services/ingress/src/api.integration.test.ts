/**
 * The HTTP surface: every error status with its body, models per tenant, OpenAPI,
 * dashboard, a fuzz pass of bad input, and shutdown ending resumable streams.
 */
import { gzipSync } from "node:zlib";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP_KEY, type Harness, parseSse, startHarness, until } from "./test-support/harness.js";
import { sleep } from "./test-support/orchestrator-driver.js";

let harness: Harness;
let eventsOnlyKey: string;
let limitedKey: string;
let betaKey: string;

const http = (path: string, init: RequestInit & { key?: string | null } = {}) => {
  const headers = new Headers(init.headers);
  if (init.key !== null) headers.set("authorization", `Bearer ${init.key ?? BOOTSTRAP_KEY}`);
  if (init.body !== undefined && !headers.has("content-type"))
    headers.set("content-type", "application/json");
  return fetch(`${harness.url}${path}`, { ...init, headers });
};

async function expectError(response: Response, status: number, type?: string) {
  expect(response.status).toBe(status);
  const body = (await response.json()) as { error: { type: string; message: string; param?: string | null } };
  expect(body.error.message.length).toBeGreaterThan(0);
  if (type) expect(body.error.type).toBe(type);
  expect(JSON.stringify(body)).not.toMatch(/\bat .+\.(ts|js):\d+|node_modules/);
  return body;
}

beforeAll(async () => {
  harness = await startHarness({
    agents: { "beta-only": { tenants: ["beta"] } },
    limits: { tenants: { limited: { requestsPerMinute: 2 } }, maxBodyBytes: 32 * 1024 },
  });
  eventsOnlyKey = await harness.key("default", ["events"]);
  limitedKey = await harness.key("limited");
  betaKey = await harness.key("beta");
});

afterAll(async () => {
  await harness?.stop();
});

describe("errors", () => {
  it("answers every failure with its status and an OpenAI-shaped body", async () => {
    const chat = (body: unknown, key?: string | null) =>
      http("/v1/chat/completions", { method: "POST", body: JSON.stringify(body), key });
    const hello = { messages: [{ role: "user", content: "hi" }] };
    await expectError(await chat(hello, null), 401, "authentication_error");
    await expectError(await chat(hello, "sk-wrong"), 401, "authentication_error");
    await expectError(await http("/v1/models", { headers: { authorization: "Basic abc" }, key: null }), 401);
    await expectError(await chat(hello, eventsOnlyKey), 403, "permission_error");
    const invalid = await expectError(
      await chat({ messages: [{ role: "user" }] }),
      400,
      "invalid_request_error",
    );
    expect(invalid.error.message).toMatch(/messages\[0\]/);
    expect(invalid.error.param).toMatch(/^messages\[0\]/);
    const temperature = await expectError(await chat({ ...hello, temperature: 7 }), 400);
    expect(temperature.error.param).toBe("temperature");
    await expectError(await http("/v1/chat/completions", { method: "POST", body: "{nope" }), 400);
    await expectError(await chat({ ...hello, model: "ghost" }), 404, "not_found_error");
    await expectError(await chat({ ...hello, model: "beta-only" }), 404);
    await expectError(await http("/v1/nowhere"), 404, "not_found_error");
    await expectError(await http("/v1/runs/bad%20id"), 400);
    await expectError(
      await http("/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ messages: [{ role: "user", content: "x".repeat(40 * 1024) }] }),
      }),
      413,
    );
    await expectError(
      await http("/v1/chat/completions", {
        method: "POST",
        body: "<xml/>",
        headers: { "content-type": "application/xml" },
      }),
      415,
    );
    for (let index = 0; index < 2; index++) {
      expect(
        (
          await http("/v1/events", {
            method: "POST",
            key: limitedKey,
            body: JSON.stringify({ specversion: "1.0", id: `l${index}`, source: "s", type: "t" }),
          })
        ).status,
      ).toBe(202);
    }
    const limited = await http("/v1/events", {
      method: "POST",
      key: limitedKey,
      body: JSON.stringify({ specversion: "1.0", id: "l9", source: "s", type: "t" }),
    });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    const body = await expectError(limited, 429, "rate_limit_error");
    expect(body.error.message).toMatch(/tenant requests per minute/);
  });

  it("surfaces errors through the official openai client and lists the agents a key may use", async () => {
    const client = new OpenAI({ baseURL: `${harness.url}/v1`, apiKey: BOOTSTRAP_KEY, maxRetries: 0 });
    const missing = await client.chat.completions
      .create({ model: "ghost", messages: [{ role: "user", content: "x" }] })
      .catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    const unauthorized = await new OpenAI({
      baseURL: `${harness.url}/v1`,
      apiKey: "nope",
      maxRetries: 0,
    }).models
      .list()
      .catch((error: unknown) => error);
    expect(unauthorized).toBeInstanceOf(OpenAI.AuthenticationError);
    const bad = await client.chat.completions
      .create({ model: "assistant", messages: [] })
      .catch((error: unknown) => error);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages");

    const own = (await client.models.list()).data.map((model) => model.id);
    expect(own).toContain("assistant");
    expect(own).not.toContain("beta-only");
    const beta = new OpenAI({ baseURL: `${harness.url}/v1`, apiKey: betaKey, maxRetries: 0 });
    expect((await beta.models.list()).data.map((model) => model.id)).toContain("beta-only");
  });
});

describe("documents", () => {
  it("serves an OpenAPI document generated from the schemas, the dashboard and metrics", async () => {
    const document = (await (await http("/openapi.json", { key: null })).json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, { schema: { $ref?: string } }> } }>
      >;
      components: { schemas: Record<string, { properties?: object }> };
    };
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        "/v1/chat/completions",
        "/v1/runs",
        "/v1/runs/{id}/events",
        "/v1/events",
        "/v1/models",
      ]),
    );
    const chatRef =
      document.paths["/v1/chat/completions"]?.post?.requestBody?.content["application/json"]?.schema.$ref;
    expect(chatRef).toBe("#/components/schemas/ChatCompletionRequest");
    const chatSchema = document.components.schemas.ChatCompletionRequest;
    expect(Object.keys(chatSchema?.properties ?? {})).toEqual(
      expect.arrayContaining(["messages", "stream", "tools"]),
    );
    const dashboard = await http("/dashboard", { key: null });
    expect(dashboard.headers.get("content-type")).toMatch(/text\/html/);
    expect(await dashboard.text()).toMatch(/\/v1\/stats/);
    // metrics only on the ops port; probes on both
    await expectError(await http("/metrics", { key: null }), 404);
    const ops = `http://127.0.0.1:${harness.ingress.opsPort}`;
    expect(harness.ingress.opsPort).not.toBe(harness.ingress.port);
    expect(await (await fetch(`${ops}/metrics`)).text()).toMatch(/http_requests_total/);
    expect((await http("/healthz", { key: null })).status).toBe(200);
    expect((await fetch(`${ops}/readyz`)).status).toBe(200);
  });
});

describe("fuzz", () => {
  it("never answers malformed input with a 5xx or a crash", async () => {
    const bodies: (string | Uint8Array)[] = [
      "",
      "null",
      "[]",
      "42",
      "true",
      '"str"',
      "{",
      "}{",
      '{"messages":null}',
      '{"messages":[null]}',
      '{"messages":[{"role":"user","content":{"x":1}}]}',
      '{"messages":[{"role":"wizard","content":"x"}]}',
      '{"messages":[{"role":"user","content":"hi"}],"stream":"yes"}',
      '{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a b"}}]}',
      '{"messages":[{"role":"user","content":"hi"}],"n":3}',
      '{"model":123,"messages":[]}',
      '{"input":"x","priority":"urgent"}',
      '{"input":"x","thread_id":"../../etc/passwd"}',
      '{"specversion":"1.0","id":"","source":"s","type":"t"}',
      '[{"specversion":"1.0","id":"a","source":"s","type":"t"},7]',
      "\u0000\u0001\u0002",
      "\uFEFF{}",
      '{"__proto__":{"polluted":1},"messages":[]}',
      '{"constructor":{"prototype":{"polluted":1}}}',
      new Uint8Array([0xff, 0xfe, 0xfd, 0x00, 0x7b]),
      new Uint8Array([0xc3, 0x28, 0x7b, 0x7d]),
      `{"messages":${"[".repeat(5000)}${"]".repeat(5000)}}`,
      `{"a":"${"\\u0000".repeat(1000)}"}`,
      JSON.stringify({ messages: [{ role: "user", content: "x".repeat(100_000) }] }),
      "9".repeat(400),
    ];
    let seed = 11;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let index = 0; index < 40; index++) {
      const length = Math.floor(random() * 120);
      bodies.push(Uint8Array.from({ length }, () => Math.floor(random() * 256)));
    }
    const contentTypes = [
      "application/json",
      "application/json; charset=utf-16",
      "application/json; charset=latin1",
      "text/plain",
      "multipart/form-data; boundary=x",
      "application/x-www-form-urlencoded",
    ];
    const statuses = new Set<number>();
    for (const path of ["/v1/chat/completions", "/v1/runs", "/v1/events"]) {
      for (const body of bodies) {
        for (const contentType of contentTypes) {
          const response = await http(path, {
            method: "POST",
            body,
            headers: { "content-type": contentType },
          });
          statuses.add(response.status);
          expect(response.status, `${path} ${contentType} ${String(body).slice(0, 40)}`).toBeLessThan(500);
          await response.arrayBuffer();
        }
      }
      // a compressed body we do not accept, and a lying content-length
      const gzipped = await http(path, {
        method: "POST",
        body: gzipSync('{"messages":[]}'),
        headers: { "content-encoding": "gzip" },
      });
      expect(gzipped.status).toBeLessThan(500);
    }
    for (const path of [
      "/v1/runs?limit=-1",
      "/v1/runs?limit=abc&status[]=x",
      "/v1/runs?cursor=%00",
      "/v1/runs/%E0%A4%A",
      "/v1/runs/..%2F..%2Fx",
      `/v1/runs/${"a".repeat(5000)}`,
      "/v1/threads/%00/messages",
      "/v1/stats?days=-5&tenant=",
      "/v1/models?x=%ZZ",
    ]) {
      const response = await http(path);
      expect(response.status, path).toBeLessThan(500);
      await response.arrayBuffer();
    }
    const oddHeaders = await http("/v1/runs/run_x/events", {
      headers: { "last-event-id": "-1e309", "x-thread-id": "\t" },
    });
    expect(oddHeaders.status).toBeLessThan(500);
    await oddHeaders.arrayBuffer();
    expect(statuses.has(400)).toBe(true);
    expect((await http("/healthz", { key: null })).status).toBe(200);
  }, 60_000);
});

describe("shutdown", () => {
  it("ends open run-event streams at once so clients resume on another replica", async () => {
    harness.driver.setScript(async (run) => {
      run.emit({ type: "run-started", agent: run.request.agent, attempt: 1 });
      await sleep(30_000);
    });
    const created = await http("/v1/runs", { method: "POST", body: JSON.stringify({ input: "long" }) });
    const { id } = (await created.json()) as { id: string };
    await until(() => harness.driver.runs.has(id));
    const events = await http(`/v1/runs/${id}/events`);
    const reading = events.text();
    await until(() => harness.ingress.app.server.listening);
    await sleep(100);
    const started = Date.now();
    await harness.ingress.stop();
    const text = await reading;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(parseSse(text).map((frame) => frame.event)).toEqual(["run-started"]);
  }, 30_000);
});
