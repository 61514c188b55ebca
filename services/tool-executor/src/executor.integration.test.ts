import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Bus } from "@agent-runtime/bus";
import { createTestBus, uniquePrefix } from "@agent-runtime/bus/testing";
import { Endpoints, type ToolExecReply, ToolUsageRecord, toolExecEndpoint } from "@agent-runtime/contracts";
import { createLogger } from "@agent-runtime/telemetry";
import { startFakeOpenAI } from "@agent-runtime/testkit";
import { defineTool } from "@agent-runtime/tools";
import OpenAI from "openai";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { z } from "zod";
import { evaluate } from "./builtins/calculator.js";
import { loadConfig } from "./config.js";
import { type RunningToolExecutor, startToolExecutor } from "./service.js";

const prefix = uniquePrefix("te");
let server: Server;
let baseUrl: string;
let executor: RunningToolExecutor;
let client: Bus;
const actions: string[] = [];
/** The `idempotency-key` header of each call the `/act` webhook received. */
const actionKeys: string[] = [];

function meta(extra: Record<string, unknown> = {}) {
  return {
    v: 1 as const,
    tenant: "acme",
    requestId: `r-${Math.random()}`,
    runId: "run-1",
    deadline: Date.now() + 10_000,
    ...extra,
  };
}

beforeAll(async () => {
  server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://x");
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      if (url.pathname === "/slow") {
        const ms = Number(url.searchParams.get("ms") ?? 0);
        setTimeout(() => response.end(JSON.stringify({ slept: ms })), ms);
      } else if (url.pathname === "/hang") {
        // never answers
      } else if (url.pathname === "/act") {
        actions.push(body);
        actionKeys.push(String(request.headers["idempotency-key"]));
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify({ done: true, count: actions.length }));
      } else if (url.pathname === "/big") {
        response.end("x".repeat(100_000));
      } else {
        response.end("plain page");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), "te-"));
  const configPath = join(dir, "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      tools: {
        webhooks: {
          slow: {
            allowPrivateNetwork: true,
            description: "sleeps",
            url: `${baseUrl}/slow`,
            method: "GET",
            sideEffects: false,
            timeoutMs: 3000,
            parameters: { type: "object", properties: { ms: { type: "number" } }, required: ["ms"] },
          },
          hang: {
            allowPrivateNetwork: true,
            description: "hangs",
            url: `${baseUrl}/hang`,
            method: "GET",
            sideEffects: false,
            timeoutMs: 300,
          },
          act: {
            allowPrivateNetwork: true,
            description: "acts",
            url: `${baseUrl}/act`,
            method: "POST",
            sideEffects: true,
            parameters: { type: "object", properties: { what: { type: "string" } } },
          },
          "act-keyed": {
            allowPrivateNetwork: true,
            description: "acts, applying each idempotency key once",
            url: `${baseUrl}/act`,
            method: "POST",
            sideEffects: true,
            idempotentByKey: true,
            parameters: { type: "object", properties: { what: { type: "string" } } },
          },
          lookup: {
            allowPrivateNetwork: true,
            description: "cached lookup",
            url: `${baseUrl}/slow`,
            method: "GET",
            sideEffects: false,
            cacheTtlSeconds: 60,
          },
          big: {
            allowPrivateNetwork: true,
            description: "large page",
            url: `${baseUrl}/big`,
            method: "GET",
            sideEffects: false,
          },
          notify: {
            allowPrivateNetwork: true,
            description: "rate-limited per user",
            url: `${baseUrl}/act`,
            method: "POST",
            sideEffects: true,
            cooldownSeconds: 30,
          },
        },
        allowPrivateNetworks: [],
        overrides: { slow: { maxConcurrency: 16 } },
        policies: [
          { tenant: "restricted", allow: ["calculator"] },
          { channel: "events", deny: ["current_time"] },
          { agent: "kiosk", allow: ["calculator", "lookup"] },
        ],
      },
    }),
  );
  const schema = prefix.toLowerCase();
  executor = await startToolExecutor(
    loadConfig({
      NATS_PREFIX: prefix,
      DATABASE_SCHEMA: schema,
      REDIS_PREFIX: `${prefix}:`,
      OPS_PORT: "0",
      AGENT_CONFIG: configPath,
    }),
    { logger: createLogger({ service: "tool-executor", level: "silent" }) },
  );
  client = await createTestBus({ prefix });
});

afterAll(async () => {
  await client?.close();
  await executor?.stop();
  server?.close();
  const db = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS "${prefix.toLowerCase()}" CASCADE`);
  await db.end();
});

describe("calculator", () => {
  it("evaluates safely", () => {
    expect(evaluate("(17 + 4) * 3")).toBe(63);
    expect(evaluate("2^10 - sqrt(16) + -3")).toBe(1017);
    expect(evaluate("max(1, 5, 3) % 4")).toBe(1);
    expect(() => evaluate("process.exit(1)")).toThrow(/unknown/);
    expect(() => evaluate("1/0")).toThrow(/division by zero/);
    expect(() => evaluate("2 +")).toThrow(/end/);
  });
});

describe("tool-executor", () => {
  it("refuses private and loopback addresses (SSRF) by default", async () => {
    for (const url of [
      `${baseUrl}/`,
      "http://169.254.169.254/latest/meta-data",
      "http://localhost:9/",
      "http://[::1]/",
      "http://10.0.0.1/",
      // the same addresses written other ways: decimal, octal, hex, short, IPv4-mapped IPv6, unspecified
      "http://2130706433/",
      "http://0177.0.0.1/",
      "http://0x7f.0.0.1/",
      "http://127.1/",
      "http://[::ffff:127.0.0.1]/",
      "http://[::ffff:a9fe:a9fe]/",
      "http://[fd00::1]/",
      "http://[fe80::1]/",
      "http://0.0.0.0/",
    ]) {
      const reply = await client.request(toolExecEndpoint("http_get"), {
        meta: meta(),
        callId: "c1",
        arguments: { url },
      });
      expect(reply.status).toBe("error");
      expect(reply.content).toMatch(/not allowed/);
    }
  });

  it("returns a model-readable error for invalid arguments", async () => {
    const reply = await client.request(toolExecEndpoint("calculator"), {
      meta: meta(),
      callId: "c1",
      arguments: '{"expr": 1}',
    });
    expect(reply.status).toBe("invalid_arguments");
    expect(reply.content).toMatch(/expression/);
    const notJson = await client.request(toolExecEndpoint("calculator"), {
      meta: meta(),
      callId: "c2",
      arguments: "{oops",
    });
    expect(notJson.status).toBe("invalid_arguments");
    expect(notJson.content).toMatch(/JSON/);
  });

  it("lists tools with JSON Schema the openai client accepts, after the tenant policy", async () => {
    const list = await client.request(Endpoints.toolList, { tenant: "acme" });
    const calculator = list.tools.find((tool) => tool.name === "calculator");
    expect(calculator?.spec.function.parameters).toMatchObject({
      type: "object",
      properties: { expression: { type: "string" } },
      required: ["expression"],
    });
    const restricted = await client.request(Endpoints.toolList, { tenant: "restricted" });
    expect(restricted.tools.map((tool) => tool.name)).toEqual(["calculator"]);

    const fake = await startFakeOpenAI();
    try {
      const openai = new OpenAI({ baseURL: fake.url, apiKey: "k", maxRetries: 0 });
      const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = list.tools.map(
        (tool) => tool.spec as OpenAI.Chat.Completions.ChatCompletionTool,
      );
      await openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }], tools });
      expect(fake.chatRequests()[0]?.tools?.map((tool) => tool.function.name)).toContain("calculator");
    } finally {
      await fake.close();
    }
  });

  it("runs a batch in parallel, each with its own timeout, results in order", async () => {
    const started = Date.now();
    const batch = await client.request(Endpoints.toolBatch, {
      meta: meta(),
      calls: [
        { callId: "a", name: "slow", arguments: { ms: 400 } },
        { callId: "b", name: "slow", arguments: { ms: 450 } },
        { callId: "c", name: "hang", arguments: {} },
        { callId: "d", name: "calculator", arguments: { expression: "1+1" } },
        { callId: "e", name: "nope", arguments: {} },
      ],
    });
    const elapsed = Date.now() - started;
    expect(batch.results.map((result) => [result.callId, result.status])).toEqual([
      ["a", "ok"],
      ["b", "ok"],
      ["c", "timeout"],
      ["d", "ok"],
      ["e", "not_found"],
    ]);
    // about the slowest call (450 ms), far from the sum (~1150 ms)
    expect(elapsed).toBeLessThan(1000);
  });

  it("acts once for a retried side-effecting call, also when two arrive together", async () => {
    const before = actions.length;
    const call = {
      meta: meta(),
      callId: "call-x",
      arguments: { what: "pay" },
      idempotencyKey: `run-1:3:call-x:${Date.now()}`,
    };
    const first = await client.request(toolExecEndpoint("act"), call);
    const retried = await client.request(toolExecEndpoint("act"), call);
    expect(first.status).toBe("ok");
    expect(retried.replayed).toBe(true);
    expect(retried.content).toBe(first.content);
    expect(actions.length - before).toBe(1);

    const key = `run-2:1:call-y:${Date.now()}`;
    const racing = await Promise.all(
      [1, 2, 3].map(() =>
        client.request(toolExecEndpoint("act"), {
          meta: meta(),
          callId: "call-y",
          arguments: { what: "ship" },
          idempotencyKey: key,
        }),
      ),
    );
    expect(actions.length - before).toBe(2);
    expect(racing.filter((reply) => reply.status === "ok").length).toBeGreaterThanOrEqual(1);
    const settled = await client.request(toolExecEndpoint("act"), {
      meta: meta(),
      callId: "call-y",
      arguments: { what: "ship" },
      idempotencyKey: key,
    });
    expect(settled.replayed).toBe(true);
  });

  /** Writes idempotency records (`values`, with `$n` for `keys`) as stopped executors leave them. */
  async function seedClaims(values: string, keys: string[]): Promise<void> {
    const db = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
    await db.connect();
    try {
      await db.query(
        `INSERT INTO "${prefix.toLowerCase()}".tool_calls
           (tenant, idempotency_key, tool, status, claimed_at, expires_at, claim_token) VALUES ${values}`,
        keys,
      );
    } finally {
      await db.end();
    }
  }

  it("never makes again a side-effecting call whose executor stopped while holding it; an expired record is claimed anew", async () => {
    const stale = `run-9:1:0:${Date.now()}`;
    const expired = `run-9:1:1:${Date.now()}`;
    // as a killed executor leaves them: claimed an hour ago, never finished (one also past its TTL)
    await seedClaims(
      `('acme', $1, 'act', 'running', now() - interval '1 hour', now() + interval '1 day', NULL),
       ('acme', $2, 'act', 'running', now() - interval '2 days', now() - interval '1 day', NULL)`,
      [stale, expired],
    );
    const before = actions.length;
    const unknown = await client.request(toolExecEndpoint("act"), {
      meta: meta(),
      callId: "call-s",
      arguments: { what: "refund" },
      idempotencyKey: stale,
    });
    expect(unknown.status).toBe("error");
    expect(unknown.error).toMatchObject({ code: "upstream", retryable: false });
    expect(unknown.content).toContain("unknown");
    expect(actions.length).toBe(before);

    const renewed = await client.request(toolExecEndpoint("act"), {
      meta: meta(),
      callId: "call-e",
      arguments: { what: "refund" },
      idempotencyKey: expired,
    });
    expect(renewed.status).toBe("ok");
    expect(actions.length).toBe(before + 1);
  });

  it("sends again, under the same key, a call whose executor stopped while holding it when its receiver applies each key once", async () => {
    const stale = `run-8:1:0:${Date.now()}`;
    const fresh = `run-8:1:1:${Date.now()}`;
    // one claimed an hour ago and never finished, as a killed executor leaves it; one claimed just now
    await seedClaims(
      `('acme', $1, 'act-keyed', 'running', now() - interval '1 hour', now() + interval '1 day', 'killed'),
       ('acme', $2, 'act-keyed', 'running', now(), now() + interval '1 day', 'alive')`,
      [stale, fresh],
    );
    const before = actions.length;
    const ask = (key: string) =>
      client.request(toolExecEndpoint("act-keyed"), {
        meta: meta(),
        callId: "call-k",
        arguments: { what: "refund" },
        idempotencyKey: key,
      });
    const resent = await ask(stale);
    expect(resent.status).toBe("ok");
    expect(actions.length).toBe(before + 1);
    expect(actionKeys.at(-1)).toBe(stale);
    // its outcome is recorded now: asked again, it is answered from the record
    const again = await ask(stale);
    expect(again.replayed).toBe(true);
    expect(again.content).toBe(resent.content);
    // a claim that is not stale yet is still running somewhere: not sent
    const running = await ask(fresh);
    expect(running.error).toMatchObject({ code: "conflict" });
    expect(actions.length).toBe(before + 1);
  });

  it("caches read-only results per tenant and enforces cooldowns per user", async () => {
    const args = { ms: 5, nonce: Date.now() };
    const first = await client.request(toolExecEndpoint("lookup"), {
      meta: meta(),
      callId: "l1",
      arguments: args,
    });
    const second = await client.request(toolExecEndpoint("lookup"), {
      meta: meta(),
      callId: "l2",
      arguments: args,
    });
    const otherTenant = await client.request(toolExecEndpoint("lookup"), {
      meta: meta({ tenant: "other" }),
      callId: "l3",
      arguments: args,
    });
    expect(first.cached).toBe(false);
    expect(second.cached).toBe(true);
    expect(second.callId).toBe("l2");
    expect(otherTenant.cached).toBe(false);

    const user = `u-${Date.now()}`;
    const once = await client.request(toolExecEndpoint("notify"), {
      meta: meta({ userId: user }),
      callId: "n1",
      arguments: {},
    });
    const again = await client.request(toolExecEndpoint("notify"), {
      meta: meta({ userId: user }),
      callId: "n2",
      arguments: {},
    });
    const otherUser = await client.request(toolExecEndpoint("notify"), {
      meta: meta({ userId: `${user}-b` }),
      callId: "n3",
      arguments: {},
    });
    expect(once.status).toBe("ok");
    expect(again.status).toBe("cooldown");
    expect(again.content).toMatch(/30 seconds/);
    expect(otherUser.status).toBe("ok");
  });

  it("keeps a personal tool's cached results per user, a shared tool's per tenant", async () => {
    const args = { ms: 5, nonce: `personal-${Date.now()}` };
    const ask = (name: string, callId: string, userId: string, input: Record<string, unknown>) =>
      client.request(toolExecEndpoint(name), { meta: meta({ userId }), callId, arguments: input });
    // webhooks are personal unless configured otherwise: another user never gets this user's result
    expect((await ask("lookup", "p1", "ann", args)).cached).toBe(false);
    expect((await ask("lookup", "p2", "bob", args)).cached).toBe(false);
    expect((await ask("lookup", "p3", "ann", args)).cached).toBe(true);
    // the calculator's result depends on its arguments alone
    const expression = `${Date.now()} + 1`;
    expect((await ask("calculator", "p4", "ann", { expression })).cached).toBe(false);
    expect((await ask("calculator", "p5", "bob", { expression })).cached).toBe(true);
  });

  it("enforces tool policies and the agent's tools when a call runs, as a typed error the model reads", async () => {
    const metrics = async () =>
      (await fetch(`http://127.0.0.1:${executor.opsPort}/metrics`).then((response) => response.text()))
        .split("\n")
        .filter((line) => line.startsWith("tool_calls_refused_total"));
    // tenant policy: only the calculator
    const denied = await client.request(toolExecEndpoint("current_time"), {
      meta: meta({ tenant: "restricted" }),
      callId: "t1",
      arguments: {},
    });
    expect(denied).toMatchObject({ status: "forbidden", error: { code: "forbidden", retryable: false } });
    expect(denied.content).toMatch(/^error: current_time is not allowed here/);
    const allowed = await client.request(toolExecEndpoint("calculator"), {
      meta: meta({ tenant: "restricted" }),
      callId: "t2",
      arguments: { expression: "2+2" },
    });
    expect(allowed.status).toBe("ok");

    // channel policy: the events channel may not read the clock, chat may
    const batch = await client.request(Endpoints.toolBatch, {
      meta: meta(),
      channel: "events",
      calls: [
        { callId: "e1", name: "current_time", arguments: {} },
        { callId: "e2", name: "calculator", arguments: { expression: "1+2" } },
      ],
    });
    expect(batch.results.map((result) => result.status)).toEqual(["forbidden", "ok"]);
    const chat = await client.request(toolExecEndpoint("current_time"), {
      meta: meta(),
      channel: "chat",
      callId: "e3",
      arguments: {},
    });
    expect(chat.status).toBe("ok");

    // agent policy, and the agent's own tool list sent by the orchestrator
    const kiosk = await client.request(toolExecEndpoint("http_get"), {
      meta: meta({ agent: "kiosk" }),
      callId: "k1",
      arguments: { url: "https://example.com" },
    });
    expect(kiosk.status).toBe("forbidden");
    const notOffered = await client.request(Endpoints.toolBatch, {
      meta: meta({ agent: "assistant" }),
      offered: ["calculator"],
      calls: [{ callId: "o1", name: "current_time", arguments: {} }],
    });
    expect(notOffered.results[0]).toMatchObject({ status: "forbidden", error: { code: "forbidden" } });
    expect(notOffered.results[0]?.content).toMatch(/not one of your tools/);

    const counted = await metrics();
    expect(counted.some((line) => /tool="current_time",reason="policy".* 2$/.test(line))).toBe(true);
    expect(counted.some((line) => /tool="current_time",reason="not_offered".* 1$/.test(line))).toBe(true);
  });

  it("answers a failure of the runtime around a tool as a retryable error, never as the tool's result", async () => {
    // memory_search relies on the memory service, which is not running here
    const single = client.request(toolExecEndpoint("memory_search"), {
      meta: meta({ userId: "ann" }),
      callId: "m1",
      arguments: { query: "what did I say" },
    });
    await expect(single).rejects.toMatchObject({ code: "unavailable", retryable: true });
    await expect(single).rejects.not.toMatchObject({ message: expect.stringMatching(/memory\.search/) });
    const batch = client.request(Endpoints.toolBatch, {
      meta: meta({ userId: "ann" }),
      calls: [
        { callId: "m2", name: "calculator", arguments: { expression: "1+1" } },
        { callId: "m3", name: "memory_search", arguments: { query: "anything" } },
      ],
    });
    await expect(batch).rejects.toMatchObject({ code: "unavailable", retryable: true });
  });

  it("caps large results before they reach the prompt", async () => {
    const reply = await client.request(toolExecEndpoint("big"), {
      meta: meta(),
      callId: "big",
      arguments: {},
    });
    expect(reply.status).toBe("ok");
    expect(reply.truncated).toBe(true);
    expect(reply.content.length).toBeLessThan(16_100);
    expect(reply.content).toMatch(/truncated \d+ characters/);
    const unreachable = await client.request(toolExecEndpoint("http_get"), {
      meta: meta(),
      callId: "dns",
      arguments: { url: "https://example.invalid/" },
    });
    expect(unreachable.status).toBe("error"); // a readable failure, not a crash
    expect(unreachable.content).toMatch(/http_get failed/);
  });

  it("calls a tool that another process hosts on NATS", async () => {
    const child = spawn(
      process.execPath,
      [
        "--conditions=source",
        "--import",
        "tsx",
        fileURLToPath(new URL("./fixtures/hosted-tool.ts", import.meta.url)),
        prefix,
      ],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    try {
      for (let i = 0; i < 200 && !output.includes("ready"); i++)
        await new Promise((resolve) => setTimeout(resolve, 50));
      let listed = false;
      for (let i = 0; i < 100 && !listed; i++) {
        const list = await client.request(Endpoints.toolList, { tenant: "acme" });
        listed = list.tools.some((tool) => tool.name === "weather" && tool.kind === "nats");
        if (!listed) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(listed).toBe(true);
      const batch = await client.request(Endpoints.toolBatch, {
        meta: meta(),
        calls: [{ callId: "w1", name: "weather", arguments: '{"city":"Oslo"}' }],
      });
      const reply = batch.results[0] as ToolExecReply;
      expect(reply.status).toBe("ok");
      expect(reply.output).toMatchObject({ city: "Oslo", tempC: 21, servedBy: child.pid });
      expect(output).toContain("called Oslo");
      const invalid = await client.request(Endpoints.toolBatch, {
        meta: meta(),
        calls: [{ callId: "w2", name: "weather", arguments: { town: 1 } }],
      });
      expect(invalid.results[0]?.status).toBe("invalid_arguments");
      expect(invalid.results[0]?.content).toMatch(/city/);
      const broken = await client.request(Endpoints.toolBatch, {
        meta: meta(),
        calls: [{ callId: "w3", name: "broken_forecast", arguments: {} }],
      });
      expect(broken.results[0]?.status).toBe("invalid_output");
      expect(broken.results[0]?.content).toMatch(/tempC/);
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("verifies results against the output schema, bounds concurrency, and records usage", async () => {
    executor.registry.addLocal(
      defineTool({
        name: "broken_tool",
        description: "returns the wrong shape",
        input: z.object({}),
        output: z.object({ total: z.number() }),
        handler: () => ({ total: "many" }) as never,
      }),
      "builtin",
    );
    executor.registry.addLocal(
      defineTool({
        name: "single_lane",
        description: "one call at a time",
        input: z.object({ n: z.number() }),
        options: { maxConcurrency: 1 },
        handler: async ({ n }) => {
          await new Promise((resolve) => setTimeout(resolve, 200));
          return { n };
        },
      }),
      "builtin",
    );
    const batch = await client.request(Endpoints.toolBatch, {
      meta: meta(),
      calls: [
        { callId: "b1", name: "broken_tool", arguments: {} },
        { callId: "s1", name: "single_lane", arguments: { n: 1 } },
        { callId: "s2", name: "single_lane", arguments: { n: 2 } },
      ],
    });
    expect(batch.results[0]?.status).toBe("invalid_output");
    expect(batch.results[0]?.content).toMatch(/total/);
    expect(
      batch.results
        .slice(1)
        .map((result) => result.status)
        .sort(),
    ).toEqual(["ok", "overloaded"]);
    const overloaded = batch.results.find((result) => result.status === "overloaded");
    expect(overloaded?.error).toMatchObject({ code: "overloaded", retryable: true });

    const jsm = await client.jsm();
    const stream = client.streamName("USAGE");
    const info = await jsm.streams.info(stream);
    const last = await jsm.streams.getMessage(stream, { seq: info.state.last_seq });
    const record = ToolUsageRecord.parse(JSON.parse(new TextDecoder().decode(last!.data)));
    expect(record).toMatchObject({ tenant: "acme", runId: "run-1" });
    expect(["broken_tool", "single_lane"]).toContain(record.tool);
  });
});
