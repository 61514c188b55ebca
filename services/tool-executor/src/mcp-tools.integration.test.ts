import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Bus } from "@agent-runtime/bus";
import { createTestBus, uniquePrefix } from "@agent-runtime/bus/testing";
import { Endpoints, toolExecEndpoint } from "@agent-runtime/contracts";
import { createLogger } from "@agent-runtime/telemetry";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadConfig } from "./config.js";
import { createFixtureMcpServer, type FixtureCounters } from "./fixtures/mcp-fixture-server.js";
import { mcpResultOf, mcpToolName } from "./mcp-tools.js";
import { type RunningToolExecutor, startToolExecutor } from "./service.js";

const prefix = uniquePrefix("mcp");
const counters: FixtureCounters = { visits: 0 };
let http: Server;
let executor: RunningToolExecutor;
let client: Bus;

function meta(extra: Record<string, unknown> = {}) {
  return {
    v: 1 as const,
    tenant: "acme",
    userId: "ann",
    requestId: `r-${Math.random()}`,
    runId: "run-mcp",
    deadline: Date.now() + 15_000,
    ...extra,
  };
}

/** The fixture server over Streamable HTTP, stateless: one server and transport per request. */
async function startHttpMcp(): Promise<string> {
  http = createServer((request, response) => {
    const server = createFixtureMcpServer(counters);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    response.on("close", () => {
      void transport.close();
      void server.close();
    });
    void server.connect(transport).then(() => transport.handleRequest(request, response));
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
}

beforeAll(async () => {
  const url = await startHttpMcp();
  const dir = mkdtempSync(join(tmpdir(), "mcp-"));
  const configPath = join(dir, "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      tools: {
        mcpServers: {
          local: {
            command: process.execPath,
            args: [
              "--conditions=source",
              "--import",
              "tsx",
              fileURLToPath(new URL("./fixtures/mcp-stdio-server.ts", import.meta.url)),
            ],
            tools: ["add", "echo", "nap", "fail"],
            timeoutMs: 1500,
            connectTimeoutMs: 30_000,
          },
          web: {
            url,
            toolPrefix: "web_",
            tools: ["add", "record_visit"],
            cacheTtlSeconds: 60,
            personal: false,
          },
          // nothing listens there: the executor starts without it
          gone: { url: "http://127.0.0.1:9/mcp", connectTimeoutMs: 1000 },
        },
        policies: [{ tenant: "restricted", deny: ["web_add"] }],
      },
    }),
  );
  executor = await startToolExecutor(
    loadConfig({
      NATS_PREFIX: prefix,
      DATABASE_SCHEMA: prefix.toLowerCase(),
      REDIS_PREFIX: `${prefix}:`,
      OPS_PORT: "0",
      AGENT_CONFIG: configPath,
    }),
    { logger: createLogger({ service: "tool-executor", level: "silent" }) },
  );
  client = await createTestBus({ prefix });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await executor?.stop();
  http?.close();
  const db = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/postgres" });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS "${prefix.toLowerCase()}" CASCADE`);
  await db.end();
});

describe("MCP tool sources", () => {
  it("lists the servers' allowed tools with their JSON Schemas beside the built-ins", async () => {
    const { tools } = await client.request(Endpoints.toolList, {});
    const byName = new Map(tools.map((tool) => [tool.name, tool]));
    for (const name of ["add", "echo", "nap", "fail", "web_add", "web_record_visit"])
      expect(byName.get(name)?.kind, name).toBe("mcp");
    expect(byName.get("calculator")?.kind).toBe("builtin");
    expect(byName.has("hidden")).toBe(false);
    expect(byName.has("web_echo")).toBe(false);
    const add = byName.get("add")!;
    expect(add.spec.function.parameters).toMatchObject({
      type: "object",
      properties: { a: { type: "number" }, b: { type: "number" } },
      required: ["a", "b"],
    });
    expect(add.sideEffects).toBe(false);
    expect(byName.get("web_record_visit")?.sideEffects).toBe(true);
  });

  it("calls a tool over stdio: structured result, text result, the server's own error", async () => {
    const add = await client.request(toolExecEndpoint("add"), {
      meta: meta(),
      callId: "c1",
      arguments: '{"a": 2, "b": 3}',
    });
    expect(add.status).toBe("ok");
    expect(add.output).toEqual({ sum: 5 });
    const echo = await client.request(toolExecEndpoint("echo"), {
      meta: meta(),
      callId: "c2",
      arguments: { text: "hi" },
    });
    expect(echo).toMatchObject({ status: "ok", content: "echo: hi" });
    const fail = await client.request(toolExecEndpoint("fail"), {
      meta: meta(),
      callId: "c3",
      arguments: {},
    });
    expect(fail.status).toBe("error");
    expect(fail.content).toMatch(/failed on purpose/);
  });

  it("validates arguments against the server's schema before calling it", async () => {
    const reply = await client.request(toolExecEndpoint("add"), {
      meta: meta(),
      callId: "c4",
      arguments: { a: "two", b: 3 },
    });
    expect(reply.status).toBe("invalid_arguments");
    expect(reply.content).toMatch(/a/);
  });

  it("applies the server's time limit", async () => {
    const reply = await client.request(toolExecEndpoint("nap"), {
      meta: meta(),
      callId: "c5",
      arguments: { ms: 10_000 },
    });
    expect(reply.status).toBe("timeout");
  });

  it("caches read-only results and replays side effects by idempotency key (Streamable HTTP)", async () => {
    const first = await client.request(toolExecEndpoint("web_add"), {
      meta: meta(),
      callId: "c6",
      arguments: { a: 40, b: 2 },
    });
    expect(first).toMatchObject({ status: "ok", output: { sum: 42 }, cached: false });
    const again = await client.request(toolExecEndpoint("web_add"), {
      meta: meta({ userId: "bob" }),
      callId: "c7",
      arguments: { a: 40, b: 2 },
    });
    expect(again).toMatchObject({ status: "ok", output: { sum: 42 }, cached: true });

    const before = counters.visits;
    const call = {
      meta: meta(),
      callId: "c8",
      arguments: { who: "ann" },
      idempotencyKey: `${prefix}-visit-1`,
    };
    const visit = await client.request(toolExecEndpoint("web_record_visit"), call);
    const replay = await client.request(toolExecEndpoint("web_record_visit"), call);
    expect(visit.status).toBe("ok");
    expect(replay).toMatchObject({ status: "ok", replayed: true, content: visit.content });
    expect(counters.visits).toBe(before + 1);
  });

  it("enforces tool policies on MCP tools", async () => {
    const { tools } = await client.request(Endpoints.toolList, { tenant: "restricted" });
    expect(tools.some((tool) => tool.name === "web_add")).toBe(false);
    const reply = await client.request(toolExecEndpoint("web_add"), {
      meta: meta({ tenant: "restricted" }),
      callId: "c9",
      arguments: { a: 1, b: 1 },
    });
    expect(reply.status).toBe("forbidden");
  });
});

describe("MCP results and names", () => {
  it("maps results and names", () => {
    expect(mcpToolName("gh_", "issues.list")).toBe("gh_issues_list");
    expect(
      mcpResultOf(
        {
          content: [
            { type: "text", text: "a" },
            { type: "text", text: "b" },
          ],
        },
        "t",
      ),
    ).toBe("a\nb");
    expect(mcpResultOf({ content: [], structuredContent: { x: 1 } }, "t")).toEqual({ x: 1 });
    const image = [{ type: "image", data: "AA==", mimeType: "image/png" }];
    expect(mcpResultOf({ content: image }, "t")).toEqual(image);
    expect(() => mcpResultOf({ isError: true, content: [{ type: "text", text: "no" }] }, "t")).toThrow("no");
  });
});
