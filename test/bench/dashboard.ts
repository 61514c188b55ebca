/**
 * dashboard benchmark: how fast `/v1/stats/series` answers (the query behind it, on the real
 * Postgres) over rollups seeded as a runtime at 1,000 turns/s leaves them: every minute of
 * the last 26 hours, every hour and day of the last 30 days, each bucket holding the rollup
 * slices (stats-rollups.ts) of every (tenant, service, kind, name, agent, code) a busy
 * multi-tenant runtime touches in it (20 tenants × 4 agents each: the chat and runs routes
 * with their refusals, 2 models with an error code, 2 tools) plus the 60 busiest users.
 * Prints and writes results/dashboard.json.
 */

import { readFileSync } from "node:fs";
import {
  BUCKET_COUNT,
  dashboardStats,
  migrateRollups,
  RANGES,
  type RollupSample,
  SLICE,
  type StatsRange,
  slicesOf,
  TIERS,
  writeRollups,
} from "@agent-runtime/ingress";
import pg from "pg";
import { DATABASE_URL, dropIsolation, newIsolation } from "../support/isolation.js";
import { summarize, writeResult } from "./stats.js";

const TURNS_PER_SECOND = 1000;
const RUNS_PER_RANGE = 15;
const TENANTS = 20;
const AGENTS = ["assistant", "researcher", "support", "coder", "planner", "writer", "triage", "sql"];
const MODELS = ["gpt-4o-mini", "gpt-4o", "llama-3.1-70b"];
const TOOLS = ["calculator", "web_search", "memory_search", "http_get", "current_time"];

interface Key {
  tenant: string;
  service: string;
  kind: string;
  name: string;
  agent: string;
  code: string;
}

function keys(): Key[] {
  const all: Key[] = [];
  for (let t = 0; t < TENANTS; t++) {
    const tenant = `tenant-${t}`;
    for (let a = 0; a < 4; a++) {
      const agent = AGENTS[(t + a) % AGENTS.length]!;
      for (const code of ["200", "429"]) {
        all.push({
          tenant,
          service: "ingress",
          kind: "http",
          name: "POST /v1/chat/completions",
          agent,
          code,
        });
        all.push({ tenant, service: "ingress", kind: "http", name: "POST /v1/runs", agent, code });
      }
      for (let m = 0; m < 2; m++) {
        const name = MODELS[(t + a + m) % MODELS.length]!;
        for (const code of ["ok", "rate_limited"])
          all.push({ tenant, service: "model-proxy", kind: "model-chat", name, agent, code });
      }
      for (let k = 0; k < 2; k++)
        all.push({
          tenant,
          service: "tool-executor",
          kind: "tool",
          name: TOOLS[(t + a + k) % TOOLS.length]!,
          agent,
          code: "ok",
        });
    }
  }
  for (let u = 0; u < 60; u++)
    all.push({
      tenant: `tenant-${u % TENANTS}`,
      service: "users",
      kind: "user",
      name: `user-${u}`,
      agent: AGENTS[u % 8]!,
      code: "ok",
    });
  return all;
}

/** The rollup rows a runtime writes for these combinations: their slices, each weighted by how many combinations add to it. */
function slices(combos: Key[]) {
  const weights = new Map<string, { key: ReturnType<typeof slicesOf>[number]; weight: number }>();
  for (const combo of combos)
    for (const key of slicesOf(combo)) {
      const id = JSON.stringify(key);
      const entry = weights.get(id) ?? { key, weight: 0 };
      entry.weight += 1;
      weights.set(id, entry);
    }
  return [...weights.values()].map(({ key, weight }) => ({ ...key, weight }));
}

async function seed(
  pool: pg.Pool,
  table: string,
  seconds: number,
  buckets: number,
  combos: Key[],
  users = true,
): Promise<number> {
  const callsPerCombo = (TURNS_PER_SECOND * seconds) / (combos.length / 4);
  const histogram = Array.from({ length: BUCKET_COUNT }, (_, index) => `h${index}`);
  const result = await pool.query(
    `INSERT INTO ${table} (tenant, slice, bucket, service, kind, name, agent, code, calls, errors, prompt_tokens,
       completion_tokens, cached_tokens, cost_usd, cache_hits, latency_ms_sum, latency_ms_max, ${histogram.join(", ")})
     SELECT k.tenant, k.slice, to_timestamp(floor(extract(epoch FROM now()) / $2) * $2 - g * $2), k.service, k.kind, k.name,
       k.agent, k.code, c, (c * 0.02)::bigint, c * 900, c * 200, c * 100, c * 0.0004, (c * 0.1)::bigint, c * 700,
       9000 + random() * 1000, ${histogram.map(() => `(c * random() / ${BUCKET_COUNT / 2})::bigint`).join(", ")}
     FROM generate_series(0, $3 - 1) AS g
     CROSS JOIN jsonb_to_recordset($1::jsonb)
       AS k(tenant text, slice smallint, service text, kind text, name text, agent text, code text, weight int)
     CROSS JOIN LATERAL (SELECT (${callsPerCombo} * k.weight * (0.5 + random()))::bigint AS c) AS calls
     -- in time and key order, as the writer adds them (each flush in key order)
     ORDER BY g DESC, k.tenant, k.slice, k.service, k.kind, k.name, k.agent, k.code`,
    [JSON.stringify(slices(combos).filter((row) => users || row.slice !== SLICE.user)), seconds, buckets],
  );
  return result.rowCount ?? 0;
}

const WRITE_SECONDS = 20;

/**
 * What the rollup writes cost Postgres at 1,000 turns/s: 20 s of turns (an HTTP
 * request, a model call and its user's share each, over the same tenants, agents and models as the
 * seed) summed in memory and written once per second of their time, as ingress does. The CPU time
 * of the Postgres backend that ran the writes, from /proc.
 */
async function writeCost(pool: pg.Pool) {
  const client = await pool.connect();
  try {
    const { pid } = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!;
    const cpuMs = () => {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 10 ms ticks
    };
    const before = cpuMs();
    const started = Math.floor(Date.now() / 60_000) * 60_000;
    let turn = 0;
    for (let second = 0; second < WRITE_SECONDS; second++) {
      const samples: RollupSample[] = [];
      for (let index = 0; index < TURNS_PER_SECOND; index++, turn++) {
        const tenantIndex = turn % TENANTS;
        const tenant = `tenant-${tenantIndex}`;
        const agent = AGENTS[(tenantIndex + (turn >> 5)) % 4]!;
        const at = started + second * 1000 + index;
        const refused = turn % 50 === 0;
        samples.push({
          at,
          tenant,
          service: "ingress",
          kind: "http",
          name: "POST /v1/chat/completions",
          agent,
          code: refused ? "429" : "200",
          latencyMs: 20 + (turn % 200),
          error: refused,
        });
        const call: RollupSample = {
          at,
          tenant,
          service: "model-proxy",
          kind: "model-chat",
          name: MODELS[(tenantIndex + turn) % MODELS.length]!,
          agent,
          code: "ok",
          latencyMs: 300 + (turn % 900),
          error: false,
          promptTokens: 900,
          completionTokens: 200,
          costUsd: 0.0004,
        };
        samples.push(call, { ...call, service: "users", kind: "user", name: `user-${turn % 60}` });
      }
      await client.query("BEGIN");
      await writeRollups(client, samples);
      await client.query("COMMIT");
    }
    const used = cpuMs() - before;
    return {
      seconds: WRITE_SECONDS,
      postgresCpuMs: used,
      postgresCpuUsPerTurn: (used * 1000) / (WRITE_SECONDS * TURNS_PER_SECOND),
    };
  } finally {
    client.release();
  }
}

async function main() {
  const isolation = newIsolation("bench-dashboard");
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${isolation.schema}"`);
  await admin.end();
  const pool = new pg.Pool({
    connectionString: DATABASE_URL,
    max: 4,
    options: `-c search_path="${isolation.schema}"`,
  });
  try {
    await migrateRollups(pool);
    const combos = keys();
    const started = performance.now();
    const rows = {
      minute: await seed(pool, TIERS.minute.table, 60, 26 * 60, combos),
      fiveMinutes: await seed(pool, TIERS.fiveMinutes.table, 300, 26 * 12, combos, false),
      hour: await seed(pool, TIERS.hour.table, 3600, 30 * 24, combos),
      day: await seed(pool, TIERS.day.table, 86_400, 30, combos),
    };
    for (const [tier, buckets] of [
      ["minute", 3 * 1440],
      ["fiveMinutes", 3 * 288],
      ["hour", 30 * 24],
      ["day", 30],
    ] as const) {
      const { queue, seconds } = TIERS[tier];
      await pool.query(
        `INSERT INTO ${queue} (bucket, lane, pending, ack_pending)
         SELECT to_timestamp(floor(extract(epoch FROM now()) / $1) * $1 - g * $1), lane, (random() * 100)::bigint, (random() * 20)::bigint
         FROM generate_series(0, $2 - 1) AS g CROSS JOIN (VALUES ('interactive'), ('batch')) AS lanes(lane)`,
        [seconds, buckets],
      );
    }
    for (const { table, queue } of Object.values(TIERS)) {
      await pool.query(`VACUUM ANALYZE ${table}`);
      await pool.query(`VACUUM ANALYZE ${queue}`);
    }
    const seedSeconds = Math.round((performance.now() - started) / 100) / 10;
    console.log(
      `seeded ${JSON.stringify(rows)} rollup rows (${combos.length} combinations, ${slices(combos).length} slice rows per bucket) in ${seedSeconds} s`,
    );

    const figures: Record<string, unknown> = {
      turnsPerSecond: TURNS_PER_SECOND,
      combinationsPerBucket: combos.length,
      sliceRowsPerBucket: slices(combos).length,
      rows,
    };
    const ranges = Object.keys(RANGES) as StatsRange[];
    for (const [label, tenant] of [
      ["all tenants", undefined],
      ["one tenant", "tenant-3"],
    ] as const) {
      const byRange: Record<string, unknown> = {};
      for (const range of ranges) {
        await dashboardStats(pool, tenant, range); // warm
        const samples: number[] = [];
        for (let run = 0; run < RUNS_PER_RANGE; run++) {
          const t0 = performance.now();
          await dashboardStats(pool, tenant, range);
          samples.push(performance.now() - t0);
        }
        const summary = summarize(samples);
        byRange[range] = { tier: RANGES[range].tier, ...summary };
        console.log(
          `${label.padEnd(12)} ${range.padEnd(4)} (${RANGES[range].tier} rollups): p50 ${summary.p50} ms, p90 ${summary.p90} ms, max ${summary.max} ms`,
        );
      }
      figures[label === "all tenants" ? "allTenants" : "oneTenant"] = byRange;
    }
    const writes = await writeCost(pool);
    console.log(
      `rollup writes at ${TURNS_PER_SECOND} turns/s, once a second: Postgres backend CPU ${writes.postgresCpuMs} ms for ${writes.seconds} s, ${writes.postgresCpuUsPerTurn.toFixed(1)} µs per turn`,
    );
    figures.rollupWrites = writes;
    writeResult("dashboard", figures);
  } finally {
    await pool.end();
    await dropIsolation(isolation);
  }
}

await main();
