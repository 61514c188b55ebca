/**
 * Test harness (not part of the build): the real memory, tool-executor and model-proxy services
 * and one or more orchestrators in this process, isolated by NATS prefix, Postgres schema and
 * Redis key prefix, with the testkit's fake OpenAI-compatible server as the only provider.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bus } from "@agent-runtime/bus";
import { cleanupTestBus, createTestBus, uniquePrefix } from "@agent-runtime/bus/testing";
import { Endpoints, RunEvent, type RunFinishedEvent, RunRequest, Subjects } from "@agent-runtime/contracts";
import * as memory from "@agent-runtime/memory";
import * as modelProxy from "@agent-runtime/model-proxy";
import { createLogger } from "@agent-runtime/telemetry";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import * as toolExecutor from "@agent-runtime/tool-executor";
import { Redis } from "ioredis";
import pg from "pg";
import { stringify } from "yaml";
import { loadConfig } from "../config.js";
import { type RunningOrchestrator, startOrchestrator } from "../service.js";

export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const LOG_LEVEL = process.env.TEST_LOG_LEVEL ?? "error";

export interface Harness {
  fake: FakeOpenAI;
  bus: Bus;
  env: NodeJS.ProcessEnv;
  schema: string;
  /** A pool on the orchestrator's schema, for checks the wire does not show. */
  db: pg.Pool;
  orchestrators: RunningOrchestrator[];
  startOrchestrator(extraEnv?: NodeJS.ProcessEnv): Promise<RunningOrchestrator>;
  /** Publishes a run on `runs.<priority>.acme`; `done` resolves on its first `run-finished`. */
  startRun(
    agent: string,
    content: RunRequest["input"] | string,
    extra?: Partial<RunRequest>,
  ): Promise<StartedRun>;
  stop(): Promise<void>;
}

export interface StartedRun {
  runId: string;
  request: RunRequest;
  /** Every event seen so far (kept after the run finishes, to count late duplicates). */
  events: RunEvent[];
  done: Promise<{ events: RunEvent[]; finished: RunFinishedEvent }>;
}

export const TENANT = "acme";

export function writeConfig(config: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), "orchestrator-test-")), "config.yaml");
  writeFileSync(path, stringify(config));
  return path;
}

/** Provider, models and tiers on the fake; agents and tools as the test needs. */
export function runtimeConfig(agents: Record<string, unknown>, tools: Record<string, unknown> = {}) {
  return {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: interpolated by the config loader
    providers: { main: { baseUrl: "${FAKE_URL}", apiKey: "k" } },
    models: {
      "fake-fast": { provider: "main", pricing: { input: 1, output: 1 } },
      "fake-strong": { provider: "main", pricing: { input: 5, output: 5 } },
    },
    tiers: { fast: ["fake-fast"], strong: ["fake-strong"] },
    tools,
    agents,
  };
}

export async function startHarness(config: unknown, extraEnv: NodeJS.ProcessEnv = {}): Promise<Harness> {
  const id = uniquePrefix("orch");
  const fake = await startFakeOpenAI();
  const env: NodeJS.ProcessEnv = {
    NATS_URL,
    DATABASE_URL,
    REDIS_URL,
    NATS_PREFIX: id,
    DATABASE_SCHEMA: id,
    REDIS_PREFIX: `${id}:`,
    OPS_PORT: "0",
    LOG_LEVEL,
    OTEL_SDK_DISABLED: "true",
    FAKE_URL: fake.url,
    AGENT_CONFIG: writeConfig(config),
    MODEL_FAST: "fake-fast",
    MODEL_STRONG: "fake-strong",
    ...extraEnv,
  };
  const services: { stop(): Promise<void> }[] = [];
  const orchestrators: RunningOrchestrator[] = [];
  const logger = (service: string) => createLogger({ service, level: LOG_LEVEL as "error" });
  services.push(await memory.startMemory(memory.loadConfig(env), { logger: logger("memory") }));
  services.push(
    await toolExecutor.startToolExecutor(toolExecutor.loadConfig(env), { logger: logger("tool-executor") }),
  );
  services.push(
    await modelProxy.startModelProxy(modelProxy.loadConfig(env), { logger: logger("model-proxy") }),
  );
  const bus = await createTestBus({ prefix: id });
  const db = new pg.Pool({ connectionString: DATABASE_URL, max: 2, options: `-c search_path=${id}` });

  const harness: Harness = {
    fake,
    bus,
    env,
    schema: id,
    db,
    orchestrators,
    startOrchestrator: async (more = {}) => {
      const orchestrator = await startOrchestrator(loadConfig({ ...env, ...more }), {
        logger: logger("orchestrator"),
      });
      orchestrators.push(orchestrator);
      return orchestrator;
    },
    startRun: async (agent, content, extra = {}) => {
      const runId = extra.runId ?? `run_${randomUUID()}`;
      const events: RunEvent[] = [];
      const done = new Promise<{ events: RunEvent[]; finished: RunFinishedEvent }>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`run ${runId} did not finish; saw ${events.map((e) => e.type).join(",")}`)),
          30_000,
        );
        bus.subscribe(Subjects.runEvents(runId), RunEvent, (event) => {
          events.push(event);
          if (event.type === "run-finished") {
            clearTimeout(timer);
            resolve({ events, finished: event });
          }
        });
      });
      done.catch(() => undefined);
      await bus.flush();
      const request = RunRequest.parse({
        runId,
        tenant: TENANT,
        agent,
        input: typeof content === "string" ? [{ role: "user", content }] : content,
        threadId: `thread_${runId}`,
        priority: "interactive",
        createdAt: Date.now(),
        deadline: Date.now() + 60_000,
        source: "runs",
        ...extra,
      });
      await bus.publishDurable(Subjects.runs(request.priority, TENANT), RunRequest, request, {
        msgId: `${runId}:${Date.now()}`,
      });
      // as ingress does for the runs API: recorded as queued once JetStream holds it
      if (request.source !== "chat")
        await bus.request(Endpoints.runRegister, {
          meta: { v: 1, tenant: TENANT, requestId: `${runId}:register`, runId, deadline: Date.now() + 5000 },
          run: request,
        });
      return { runId, request, events, done };
    },
    stop: async () => {
      for (const orchestrator of orchestrators.reverse()) await orchestrator.stop().catch(() => undefined);
      for (const service of services.reverse()) await service.stop().catch(() => undefined);
      await cleanupTestBus(bus).catch(() => undefined);
      await fake.close();
      await db.query(`DROP SCHEMA IF EXISTS "${id}" CASCADE`).catch(() => undefined);
      await db.end();
      await dropRedisKeys(`${id}:`);
    },
  };
  return harness;
}

async function dropRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } catch {
    // Redis is a cache: nothing to clean when it is gone
  } finally {
    redis.disconnect();
  }
}

/** Resolves once `check` holds (polled), or rejects after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
