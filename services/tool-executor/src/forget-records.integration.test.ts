import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bus } from "@agent-runtime/bus";
import { createTestBus, uniquePrefix } from "@agent-runtime/bus/testing";
import { Endpoints, toolExecEndpoint } from "@agent-runtime/contracts";
import { createLogger } from "@agent-runtime/telemetry";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadConfig } from "./config.js";
import { type RunningToolExecutor, startToolExecutor } from "./service.js";

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const prefix = uniquePrefix("tf");
let server: Server;
let executor: RunningToolExecutor;
let client: Bus;
let db: pg.Client;
let acted = 0;

const meta = (extra: Record<string, unknown> = {}) => ({
  v: 1 as const,
  tenant: "acme",
  requestId: `r-${Math.random()}`,
  deadline: Date.now() + 10_000,
  ...extra,
});

const forget = (request: { runIds?: string[]; userIds?: string[]; tools?: string[] }, tenant = "acme") =>
  client.request(Endpoints.toolForget, { meta: meta({ tenant }), ...request });

const call = (
  name: string,
  callId: string,
  input: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) =>
  client.request(toolExecEndpoint(name), {
    meta: meta(extra.meta as Record<string, unknown> | undefined),
    callId,
    arguments: input,
    ...(extra.idempotencyKey ? { idempotencyKey: extra.idempotencyKey as string } : {}),
  });

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    request.on("end", () => {
      if (request.method === "POST") acted++;
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ said: body || request.url, acted }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const configPath = join(mkdtempSync(join(tmpdir(), "tf-")), "config.yaml");
  writeFileSync(
    configPath,
    stringify({
      tools: {
        webhooks: {
          act: { allowPrivateNetwork: true, description: "acts", url: `${url}/act`, sideEffects: true },
          lookup: {
            allowPrivateNetwork: true,
            description: "cached lookup",
            url: `${url}/lookup`,
            method: "GET",
            sideEffects: false,
            cacheTtlSeconds: 60,
          },
        },
        allowPrivateNetworks: [],
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
  db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
});

afterAll(async () => {
  await client?.close();
  await executor?.stop();
  server?.close();
  await db?.query(`DROP SCHEMA IF EXISTS "${prefix.toLowerCase()}" CASCADE`);
  await db?.end();
});

describe("tool.forget", () => {
  it("drops a run's idempotency records (replies included) and a user's cached results", async () => {
    const secret = `secret-${Date.now()}`;
    const acting = { meta: { userId: "ann", runId: "run_f1" }, idempotencyKey: "run_f1:0:0" };
    const first = await call("act", "a1", { what: secret }, acting);
    expect(first.content).toContain(secret);
    // the same key again answers from the record, without acting again
    const before = acted;
    expect((await call("act", "a2", { what: secret }, acting)).content).toContain(secret);
    expect(acted).toBe(before);
    // another run's record and another user's cache stay
    await call("act", "a3", { what: secret }, { meta: { userId: "ann" }, idempotencyKey: "run_f10:0:0" });
    const ann = { meta: { userId: "ann" } };
    const bob = { meta: { userId: "bob" } };
    expect((await call("lookup", "l1", { q: secret }, ann)).cached).toBe(false);
    expect((await call("lookup", "l2", { q: secret }, bob)).cached).toBe(false);
    expect((await call("lookup", "l3", { q: secret }, ann)).cached).toBe(true);
    // the calculator's results are kept for the whole tenant
    expect((await call("calculator", "c1", { expression: "6 * 7" }, ann)).cached).toBe(false);

    const records = `"${prefix.toLowerCase()}".tool_calls`;
    const stored = async () =>
      (await db.query<{ key: string }>(`SELECT idempotency_key AS key FROM ${records} ORDER BY 1`)).rows.map(
        (row) => row.key,
      );
    expect(await stored()).toEqual(["run_f10:0:0", "run_f1:0:0"]);

    // another tenant's forget touches nothing of this one
    expect((await forget({ runIds: ["run_f1"], userIds: ["ann"] }, "globex")).deleted).toEqual({
      records: 0,
      cached: 0,
    });
    const reply = await forget({
      runIds: ["run_f1"],
      userIds: ["ann"],
      tools: ["act", "lookup", "calculator"],
    });
    expect(reply.deleted).toEqual({ records: 1, cached: 2 });
    expect(await stored()).toEqual(["run_f10:0:0"]);
    expect((await call("lookup", "l4", { q: secret }, ann)).cached).toBe(false);
    expect((await call("lookup", "l5", { q: secret }, bob)).cached).toBe(true);
    expect((await call("calculator", "c2", { expression: "6 * 7" }, bob)).cached).toBe(false);
    // forgotten: the key would act again (a forgotten run is over and never resumed)
    await call("act", "a4", { what: secret }, acting);
    expect(acted).toBe(before + 2);
  });

  it("without tools named, drops every cached result of the users, and no tenant-wide ones", async () => {
    const carol = { meta: { userId: "carol" } };
    expect((await call("lookup", "m1", { q: "carol's" }, carol)).cached).toBe(false);
    expect((await call("calculator", "m2", { expression: "1 + 2" }, carol)).cached).toBe(false);
    expect((await forget({ userIds: ["carol"] })).deleted).toEqual({ records: 0, cached: 1 });
    expect((await call("calculator", "m3", { expression: "1 + 2" }, carol)).cached).toBe(true);
  });
});
