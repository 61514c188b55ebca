/**
 * The private stack of the chaos suite: a nats-server and a redis-server of its own (both
 * restartable at the same address), a Postgres cluster of its own (initdb into a temporary
 * directory, fsync on; the suite crashes it with `pg_ctl stop -m immediate` and starts it again),
 * the fake model, the side-effecting `ship` webhook, and `replicas` processes of every service.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { staleAfterMs } from "@agent-runtime/contracts";
import { type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import pg from "pg";
import { stringify } from "yaml";
import { newIsolation } from "../support/isolation.js";
import { type PrivatePostgres, startPrivatePostgres } from "../support/private-postgres.js";
import { freePort } from "../support/processes.js";
import { type ReplicaPool, type Runtime, startReplicaPool } from "../support/replicas.js";
import {
  type NatsServer,
  type RestartableServer,
  startPrivateNats,
  startPrivateRedis,
} from "../support/servers.js";
import { type SideEffectHook, startSideEffectHook } from "../support/side-effect-hook.js";
import { modelHandler } from "./model-script.js";

export const CHAOS_KEY = "sk-chaos-suite-key";
/** Every run's deadline at ingress; clients wait this plus a margin before they call a request hung. */
export const RUN_TIMEOUT_MS = 30_000;

export interface ChaosStack {
  nats: NatsServer;
  redis: RestartableServer;
  postgres: PrivatePostgres;
  schema: string;
  fake: FakeOpenAI;
  hook: SideEffectHook;
  pool: ReplicaPool;
  /** Base URL (no `/v1`) of each ingress replica, by replica id. */
  ingressUrls: Map<string, string>;
  /**
   * A small pool on the private Postgres, inside the schema: its connections die with each crash
   * and are opened again on the next query.
   */
  db: pg.Pool;
  stop(): Promise<void>;
}

/** The `ship` webhook's time limit. */
const SHIP_TIMEOUT_MS = 10_000;
/** A tool executor sends a call of `ship` (its webhook applies each key once) again once its claim is this old. */
export const SHIP_STALE_CLAIM_MS = staleAfterMs({ timeoutMs: SHIP_TIMEOUT_MS, idempotentByKey: true });

/**
 * The agents, the side-effecting `ship` webhook and limits out of the way: the config both fault
 * suites run. The webhook applies each idempotency key once (`honorKeys` on the hook), so a call
 * whose executor was killed between claiming its key and hearing back is sent again, not lost.
 */
export function writeFaultSuiteConfig(hookUrl: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "fault-suite-config-")), "config.yaml");
  writeFileSync(
    path,
    stringify({
      tools: {
        webhooks: {
          ship: {
            description: "ships an order (a side effect)",
            url: hookUrl,
            sideEffects: true,
            idempotentByKey: true,
            timeoutMs: SHIP_TIMEOUT_MS,
            allowPrivateNetwork: true,
            parameters: { type: "object", properties: { order: { type: "string" } }, required: ["order"] },
          },
        },
      },
      agents: {
        assistant: { tools: [], maxSteps: 4 },
        shipper: { tools: ["ship"], maxSteps: 4 },
        "order-watcher": { tools: ["ship"], maxSteps: 4, triggers: ["com.example.chaos.*"] },
      },
      // the load is the suite's own: tenant limits must not be what answers it
      limits: {
        defaults: {
          requestsPerMinute: 1_000_000,
          userRequestsPerMinute: 1_000_000,
          concurrentRuns: 10_000,
          tokensPerDay: 1_000_000_000,
          costPerMonthUsd: 1_000_000,
        },
        global: { requestsPerMinute: 1_000_000, concurrentRuns: 10_000 },
      },
    }),
  );
  return path;
}

export async function startChaosStack(options: {
  replicas: number;
  logDir: string;
  /** Keep the private Postgres cluster (stopped, on disk) after the run, to look into it. */
  keepSchema?: boolean;
  /** The checkout whose services run (another commit's, with its dependencies installed). */
  servicesRoot?: string;
  runtime: Runtime;
}): Promise<ChaosStack> {
  const isolation = newIsolation("chaos");
  const cleanups: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const nats = await startPrivateNats();
    cleanups.push(() => nats.close());
    const redis = await startPrivateRedis();
    cleanups.push(() => redis.close());
    // room for every replica's pools (10 connections each) and the suite's own
    const postgres = await startPrivatePostgres({ label: "chaos", database: "chaos", maxConnections: 300 });
    cleanups.push(() => postgres.close({ keep: options.keepSchema === true }));
    const db = new pg.Pool({
      connectionString: postgres.url,
      max: 2,
      options: `-c search_path=${isolation.schema}`,
    });
    db.on("error", () => undefined); // an idle connection ended by a crash
    cleanups.push(() => db.end());
    await db.query(`CREATE SCHEMA IF NOT EXISTS "${isolation.schema}"`);

    const fake = await startFakeOpenAI();
    fake.setHandler(modelHandler);
    cleanups.push(() => fake.close());
    const hook = await startSideEffectHook({ delayMs: 150, honorKeys: true });
    cleanups.push(() => hook.close());

    const ingressPorts = new Map<number, number>();
    for (let index = 1; index <= options.replicas; index++) ingressPorts.set(index, await freePort());
    const pool = await startReplicaPool({
      replicas: options.replicas,
      logDir: options.logDir,
      ...(options.servicesRoot ? { root: options.servicesRoot } : {}),
      runtime: options.runtime,
      // a 2-core machine running other tests can take long to start a process
      readyTimeoutMs: 120_000,
      env: {
        NATS_URL: nats.url,
        REDIS_URL: redis.url,
        DATABASE_URL: postgres.url,
        NATS_PREFIX: isolation.natsPrefix,
        DATABASE_SCHEMA: isolation.schema,
        REDIS_PREFIX: isolation.redisPrefix,
        OPS_PORT: "0",
        OTEL_SDK_DISABLED: "true",
        HOST: "127.0.0.1",
        LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? "info",
        BOOTSTRAP_API_KEY: CHAOS_KEY,
        OPENAI_BASE_URL: fake.url,
        OPENAI_API_KEY: "sk-fake",
        MODEL_FAST: "fake-fast",
        MODEL_STRONG: "fake-strong",
        MODEL_EMBED: "fake-embed",
        AGENT_CONFIG: writeFaultSuiteConfig(hook.url),
        RUN_TIMEOUT_MS: String(RUN_TIMEOUT_MS),
      },
      envOf: (service, index) => (service === "ingress" ? { PORT: String(ingressPorts.get(index)) } : {}),
    });
    cleanups.push(() => pool.stopAll());
    const ingressUrls = new Map<string, string>();
    for (const replica of pool.of("ingress"))
      ingressUrls.set(replica.id, `http://127.0.0.1:${replica.env.PORT}`);
    return {
      nats,
      redis,
      postgres,
      schema: isolation.schema,
      fake,
      hook,
      pool,
      ingressUrls,
      db,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
