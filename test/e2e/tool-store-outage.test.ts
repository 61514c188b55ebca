/**
 * The tool executor's store (Postgres, its idempotency records) goes away while a run calls a
 * side-effecting tool: the failure is never a tool result the model reads (a client once got a
 * 200 whose answer was the error text). The call is retried within the run's deadline and the
 * run answers with the tool's real result once the store is back, the side effect made once,
 * also when the store committed the call's claim and went away before saying so.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@agent-runtime/telemetry";
import { contentText, type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import * as toolExecutor from "@agent-runtime/tool-executor";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { DATABASE_URL } from "../support/isolation.js";
import { type Stack, startStack } from "../support/stack.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

const KEY = "sk-tool-store-outage";
let fake: FakeOpenAI;
let stack: Stack;
let proxy: TcpProxy;
let executor: { stop(): Promise<void> };
let hook: Server;
const effects: string[] = [];
const toolMessages: string[] = [];
/** Cuts the executor's store while the webhook acts: the effect is made, its record cannot be written yet. */
let cutDuringEffect = false;
/** When the store cut during an effect comes back. */
let storeBackAt = 0;

beforeAll(async () => {
  hook = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      effects.push(body);
      if (cutDuringEffect) {
        cutDuringEffect = false;
        proxy.down();
        storeBackAt = Date.now() + 1500;
        setTimeout(() => proxy.up(), 1500);
      }
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ ticket: `T-${effects.length}` }));
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/tickets`;

  fake = await startFakeOpenAI();
  fake.setHandler((body) => {
    const last = body.messages.at(-1);
    if (last?.role === "tool") {
      toolMessages.push(contentText(last.content));
      return { content: `done: ${contentText(last.content)}` };
    }
    return { toolCalls: [{ name: "open_ticket", arguments: { title: "printer on fire" } }] };
  });
  const configPath = join(mkdtempSync(join(tmpdir(), "tool-outage-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      agents: { helpdesk: { tools: ["open_ticket"] } },
      tools: {
        webhooks: {
          open_ticket: {
            description: "opens a ticket",
            url: hookUrl,
            method: "POST",
            sideEffects: true,
            allowPrivateNetwork: true,
            parameters: { type: "object", properties: { title: { type: "string" } } },
          },
        },
      },
    }),
  );
  stack = await startStack({
    bootstrapApiKey: KEY,
    openaiBaseUrl: fake.url,
    env: { AGENT_CONFIG: configPath },
    without: ["tool-executor"],
  });
  // only the tool executor reaches Postgres through the proxy the test cuts
  const target = new URL(DATABASE_URL);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const viaProxy = new URL(DATABASE_URL);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  executor = await toolExecutor.startToolExecutor(
    toolExecutor.loadConfig({ ...stack.env, DATABASE_URL: viaProxy.toString() }),
    { logger: createLogger({ service: "tool-executor", level: "silent" }) },
  );
}, 60_000);

afterAll(async () => {
  proxy?.up();
  await executor?.stop();
  await stack?.stop();
  await proxy?.close();
  await fake?.close();
  hook?.close();
});

describe("tool executor store outage", () => {
  it("retries the call until the store is back; the model never reads the failure", async () => {
    proxy.down();
    setTimeout(() => proxy.up(), 2000);
    const started = Date.now();
    const response = await fetch(`${stack.url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ agent: "helpdesk", input: "the printer is on fire", wait: true }),
    });
    expect(response.status).toBe(200);
    const run = (await response.json()) as { status: string; output: { content: string } | null };
    expect(run.status).toBe("completed");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(run.output?.content).toMatch(/^done: \{"ticket":"T-\d+"\}$/);
    // every tool result the model read was the tool's own; the side effect was made once
    expect(toolMessages).toHaveLength(1);
    expect(toolMessages[0]).not.toMatch(/error|unavailable|ECONN|terminat/i);
    expect(effects).toHaveLength(1);
  });

  it("an effect made while the store goes away is answered at once and never made again", async () => {
    effects.length = 0;
    toolMessages.length = 0;
    cutDuringEffect = true;
    const response = await fetch(`${stack.url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ agent: "helpdesk", input: "the toaster is on fire", wait: true }),
    });
    expect(response.status).toBe(200);
    // the reply did not wait for the record: the run answered while the store was still away
    expect(Date.now()).toBeLessThan(storeBackAt);
    const run = (await response.json()) as { status: string; output: { content: string } | null };
    expect(run.status).toBe("completed");
    expect(run.output?.content).toMatch(/^done: \{"ticket":"T-1"\}$/);
    expect(toolMessages).toHaveLength(1);
    // the record was written once the store came back: the effect stays made once
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(effects).toHaveLength(1);
    const db = new pg.Client({ connectionString: DATABASE_URL });
    await db.connect();
    try {
      const records = await db.query(
        `SELECT status, reply->>'content' AS content FROM "${stack.isolation.schema}".tool_calls`,
      );
      expect(records.rows).toContainEqual({ status: "done", content: '{"ticket":"T-1"}' });
      expect(records.rows.filter((row) => row.status !== "done")).toEqual([]);
    } finally {
      await db.end();
    }
  });

  it("a claim the store committed but never confirmed is let go: the call acts once, the model reads its result", async () => {
    effects.length = 0;
    toolMessages.length = 0;
    // the claim of the call reaches Postgres and commits; the store goes away before its answer comes back
    const cut = proxy.cutAfter(/INSERT INTO tool_calls/, 1500);
    const response = await fetch(`${stack.url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ agent: "helpdesk", input: "the kettle is on fire", wait: true }),
    });
    await cut;
    expect(response.status).toBe(200);
    const run = (await response.json()) as { status: string; output: { content: string } | null };
    expect(run.status).toBe("completed");
    expect(toolMessages).toHaveLength(1);
    expect(toolMessages[0]).not.toMatch(/error|unknown|unavailable|ECONN|terminat/i);
    expect(run.output?.content).toMatch(/^done: \{"ticket":"T-1"\}$/);
    expect(effects).toHaveLength(1);
  });
});
