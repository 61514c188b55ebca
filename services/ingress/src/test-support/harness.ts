/**
 * Test harness (not part of the build): ingress in this process on an ephemeral port,
 * isolated by NATS prefix, Postgres schema and Redis key prefix, with the orchestrator
 * driver answering the NATS side of the contract.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bus } from "@agent-runtime/bus";
import { cleanupTestBus, createTestBus, uniquePrefix } from "@agent-runtime/bus/testing";
import { createPool } from "@agent-runtime/stores";
import { createLogger } from "@agent-runtime/telemetry";
import { Redis } from "ioredis";
import pg from "pg";
import { stringify } from "yaml";
import { loadConfig } from "../config.js";
import { KeyStore } from "../keys.js";
import { type RunningIngress, startIngress } from "../service.js";
import { type OrchestratorDriver, startOrchestratorDriver } from "./orchestrator-driver.js";

export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
export const BOOTSTRAP_KEY = "sk-ingress-unit-bootstrap";

export interface Isolation {
  prefix: string;
  schema: string;
  redisPrefix: string;
}

export function newIsolation(label = "ing"): Isolation {
  const prefix = uniquePrefix(label);
  return { prefix, schema: prefix, redisPrefix: `${prefix}:` };
}

export function ingressEnv(isolation: Isolation, config: object, extra: NodeJS.ProcessEnv = {}) {
  const configPath = join(mkdtempSync(join(tmpdir(), "ingress-")), "config.yaml");
  writeFileSync(configPath, stringify(config));
  return {
    NATS_URL,
    DATABASE_URL,
    REDIS_URL,
    NATS_PREFIX: isolation.prefix,
    DATABASE_SCHEMA: isolation.schema,
    REDIS_PREFIX: isolation.redisPrefix,
    PORT: "0",
    OPS_PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "error",
    OTEL_SDK_DISABLED: "true",
    BOOTSTRAP_API_KEY: BOOTSTRAP_KEY,
    AGENT_CONFIG: configPath,
    ...extra,
  } satisfies NodeJS.ProcessEnv;
}

export async function startIngressIn(env: NodeJS.ProcessEnv): Promise<RunningIngress> {
  const config = loadConfig(env);
  return startIngress(config, { logger: createLogger({ service: "ingress", level: config.logLevel }) });
}

export interface Harness {
  isolation: Isolation;
  env: NodeJS.ProcessEnv;
  ingress: RunningIngress;
  url: string;
  bus: Bus;
  driver: OrchestratorDriver;
  pool: pg.Pool;
  keys: KeyStore;
  /** Makes a key for a tenant (all scopes but admin unless given). */
  key(tenant: string, scopes?: ("chat" | "runs" | "events" | "admin")[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startHarness(
  config: object = {},
  extraEnv: NodeJS.ProcessEnv = {},
  options: { driver?: boolean } = {},
): Promise<Harness> {
  const isolation = newIsolation();
  const env = ingressEnv(isolation, config, extraEnv);
  const ingress = await startIngressIn(env);
  const bus = await createTestBus({ prefix: isolation.prefix, name: "ingress-test" });
  const driver =
    options.driver === false
      ? await startOrchestratorDriver(bus, { priorities: [] })
      : await startOrchestratorDriver(bus);
  const pool = await createPool({ url: DATABASE_URL, schema: isolation.schema, max: 2 });
  const keys = new KeyStore(pool, 0);
  const harness: Harness = {
    isolation,
    env,
    ingress,
    url: ingress.url,
    bus,
    driver,
    pool,
    keys,
    key: async (tenant, scopes = ["chat", "runs", "events"]) =>
      (await keys.create(tenant, scopes, "test")).key,
    stop: async () => {
      await ingress.stop().catch(() => undefined);
      await harness.driver.stop().catch(() => undefined);
      await pool.end().catch(() => undefined);
      await cleanupTestBus(bus).catch(() => undefined);
      await dropIsolation(isolation);
    },
  };
  return harness;
}

export async function dropIsolation(isolation: Isolation): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${isolation.schema}" CASCADE`);
  } finally {
    await client.end();
  }
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, found] = await redis.scan(cursor, "MATCH", `${isolation.redisPrefix}*`, "COUNT", 1000);
      cursor = next;
      if (found.length > 0) await redis.del(...found);
    } while (cursor !== "0");
  } catch {
    // nothing to clean when Redis is gone
  } finally {
    redis.disconnect();
  }
}

/** Reads an SSE body into frames ({ id, event, data }) until it ends. */
export function parseSse(text: string): { id?: string; event?: string; data: string }[] {
  return text
    .split("\n\n")
    .map((block) => block.trim())
    .filter((block) => block.length > 0 && !block.startsWith(":"))
    .map((block) => {
      const frame: { id?: string; event?: string; data: string } = { data: "" };
      for (const line of block.split("\n")) {
        if (line.startsWith("id: ")) frame.id = line.slice(4);
        else if (line.startsWith("event: ")) frame.event = line.slice(7);
        else if (line.startsWith("data: ")) frame.data += line.slice(6);
      }
      return frame;
    });
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
