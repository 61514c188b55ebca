import { migrate } from "@agent-runtime/stores";
import type pg from "pg";

/**
 * Time-bucketed rollups behind `/v1/stats/series` and the dashboard. Every model call,
 * tool call and HTTP request adds to one row per (bucket, tenant, service, kind, name,
 * agent, code) in three tiers: per minute (kept 3 days), per hour (kept 40 days) and per
 * day (kept 400 days). A query reads the coarsest tier that still gives its range enough
 * points, so 30 days read a few thousand rows however busy the runtime is.
 *
 * Latency is kept as a fixed histogram (`h0`…`h19`, upper bounds in `LATENCY_BOUNDS_MS`),
 * so percentiles of any slice are read from summed buckets.
 */

/** Upper bounds (ms) of the latency buckets; the last bucket is everything above. */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  5, 10, 25, 50, 100, 150, 250, 400, 600, 800, 1000, 1500, 2000, 3000, 5000, 8000, 12000, 20000, 40000,
];
export const BUCKET_COUNT = LATENCY_BOUNDS_MS.length + 1;
const BUCKETS = Array.from({ length: BUCKET_COUNT }, (_, index) => `h${index}`);

export const TIERS = {
  minute: { table: "stats_minute", seconds: 60, keep: "3 days" },
  hour: { table: "stats_hour", seconds: 3600, keep: "40 days" },
  day: { table: "stats_day", seconds: 86_400, keep: "400 days" },
} as const;
export type Tier = keyof typeof TIERS;

/** What a rollup row is about. `code` is `ok`, an error code or an HTTP status. */
export interface RollupKey {
  tenant: string;
  /** `ingress`, `model-proxy`, `tool-executor`; `users` for per-user rows. */
  service: string;
  /** `http`, `model-chat`, `model-embed`, `tool`, `user`. */
  kind: string;
  name: string;
  agent: string;
  code: string;
}

export interface RollupSums {
  calls: number;
  errors: number;
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens the provider served from its own prompt cache. */
  cachedTokens: number;
  costUsd: number;
  cacheHits: number;
  latencyMsSum: number;
  latencyMsMax: number;
  histogram: number[];
}

export interface RollupSample extends RollupKey {
  /** Epoch milliseconds. */
  at: number;
  latencyMs: number;
  error: boolean;
  promptTokens?: number;
  completionTokens?: number;
  cachedTokens?: number;
  costUsd?: number;
  cacheHit?: boolean;
}

export const ROLLUP_MIGRATIONS = Object.values(TIERS)
  .flatMap(({ table }) => [
    `CREATE TABLE IF NOT EXISTS ${table} (
     bucket timestamptz NOT NULL,
     tenant text NOT NULL,
     service text NOT NULL,
     kind text NOT NULL,
     name text NOT NULL,
     agent text NOT NULL DEFAULT '',
     code text NOT NULL,
     calls bigint NOT NULL DEFAULT 0,
     errors bigint NOT NULL DEFAULT 0,
     prompt_tokens bigint NOT NULL DEFAULT 0,
     completion_tokens bigint NOT NULL DEFAULT 0,
     cached_tokens bigint NOT NULL DEFAULT 0,
     cost_usd double precision NOT NULL DEFAULT 0,
     cache_hits bigint NOT NULL DEFAULT 0,
     latency_ms_sum double precision NOT NULL DEFAULT 0,
     latency_ms_max double precision NOT NULL DEFAULT 0,
     ${BUCKETS.map((column) => `${column} bigint NOT NULL DEFAULT 0`).join(",\n     ")},
     PRIMARY KEY (bucket, tenant, service, kind, name, agent, code)
   )`,
    `CREATE INDEX IF NOT EXISTS ${table}_tenant ON ${table} (tenant, bucket)`,
  ])
  .concat([
    // the deepest pending and in-progress counts seen per lane and minute
    `CREATE TABLE IF NOT EXISTS stats_queue_minute (
     bucket timestamptz NOT NULL,
     lane text NOT NULL,
     pending bigint NOT NULL DEFAULT 0,
     ack_pending bigint NOT NULL DEFAULT 0,
     PRIMARY KEY (bucket, lane)
   )`,
  ]);

export async function migrateRollups(pool: pg.Pool): Promise<void> {
  await migrate(pool, "ingress-stats-rollups", ROLLUP_MIGRATIONS);
}

/** The histogram bucket a latency falls in. */
export function bucketOf(latencyMs: number): number {
  const index = LATENCY_BOUNDS_MS.findIndex((bound) => latencyMs <= bound);
  return index === -1 ? LATENCY_BOUNDS_MS.length : index;
}

/** The `q` quantile (0..1) of a histogram, interpolated inside its bucket; `maxMs` caps the top bucket. */
export function quantileOf(histogram: readonly number[], q: number, maxMs: number): number {
  const total = histogram.reduce((sum, count) => sum + count, 0);
  if (total === 0) return 0;
  const rank = q * total;
  let seen = 0;
  for (let index = 0; index < histogram.length; index++) {
    const count = histogram[index] ?? 0;
    if (count > 0 && seen + count >= rank) {
      const lower = index === 0 ? 0 : LATENCY_BOUNDS_MS[index - 1]!;
      const upper = Math.min(LATENCY_BOUNDS_MS[index] ?? maxMs, Math.max(maxMs, lower));
      return Math.round(lower + ((rank - seen) / count) * (upper - lower));
    }
    seen += count;
  }
  return Math.round(maxMs);
}

export function emptySums(): RollupSums {
  return {
    calls: 0,
    errors: 0,
    promptTokens: 0,
    completionTokens: 0,
    cachedTokens: 0,
    costUsd: 0,
    cacheHits: 0,
    latencyMsSum: 0,
    latencyMsMax: 0,
    histogram: new Array<number>(BUCKET_COUNT).fill(0),
  };
}

/** Adds `from` into `into`. */
export function addSums(into: RollupSums, from: RollupSums): void {
  into.calls += from.calls;
  into.errors += from.errors;
  into.promptTokens += from.promptTokens;
  into.completionTokens += from.completionTokens;
  into.cachedTokens += from.cachedTokens;
  into.costUsd += from.costUsd;
  into.cacheHits += from.cacheHits;
  into.latencyMsSum += from.latencyMsSum;
  into.latencyMsMax = Math.max(into.latencyMsMax, from.latencyMsMax);
  for (let index = 0; index < BUCKET_COUNT; index++)
    into.histogram[index] = (into.histogram[index] ?? 0) + (from.histogram[index] ?? 0);
}

function sampleSums(sample: RollupSample): RollupSums {
  const sums = emptySums();
  sums.calls = 1;
  sums.errors = sample.error ? 1 : 0;
  sums.promptTokens = sample.promptTokens ?? 0;
  sums.completionTokens = sample.completionTokens ?? 0;
  sums.cachedTokens = sample.cachedTokens ?? 0;
  sums.costUsd = sample.costUsd ?? 0;
  sums.cacheHits = sample.cacheHit ? 1 : 0;
  sums.latencyMsSum = sample.latencyMs;
  sums.latencyMsMax = sample.latencyMs;
  sums.histogram[bucketOf(sample.latencyMs)] = 1;
  return sums;
}

interface Row {
  bucket: number;
  key: RollupKey;
  sums: RollupSums;
}

/** Samples summed per bucket of one tier, in key order (concurrent writers lock rows in the same order). */
function rowsOf(samples: readonly RollupSample[], seconds: number): Row[] {
  const rows = new Map<string, Row>();
  for (const sample of samples) {
    const bucket = Math.floor(sample.at / 1000 / seconds) * seconds;
    const { tenant, service, kind, name, agent, code } = sample;
    const id = [bucket, tenant, service, kind, name, agent, code].join("\u0000");
    let row = rows.get(id);
    if (!row) {
      row = { bucket, key: { tenant, service, kind, name, agent, code }, sums: emptySums() };
      rows.set(id, row);
    }
    addSums(row.sums, sampleSums(sample));
  }
  return [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
}

const SUM_COLUMNS = [
  "calls",
  "errors",
  "prompt_tokens",
  "completion_tokens",
  "cached_tokens",
  "cost_usd",
  "cache_hits",
  "latency_ms_sum",
  ...BUCKETS,
];
const KEY_COLUMNS = ["tenant", "service", "kind", "name", "agent", "code"];

function upsertSql(table: string): string {
  const columns = ["bucket", ...KEY_COLUMNS, ...SUM_COLUMNS, "latency_ms_max"];
  const types = (column: string) =>
    column === "bucket"
      ? "timestamptz"
      : KEY_COLUMNS.includes(column)
        ? "text"
        : column.startsWith("cost") || column.startsWith("latency")
          ? "float8"
          : "bigint";
  return `INSERT INTO ${table} AS t (${columns.join(", ")})
    SELECT ${columns.join(", ")} FROM jsonb_to_recordset($1::jsonb) AS r(${columns.map((column) => `${column} ${types(column)}`).join(", ")})
    ON CONFLICT (bucket, ${KEY_COLUMNS.join(", ")}) DO UPDATE SET
      ${SUM_COLUMNS.map((column) => `${column} = t.${column} + EXCLUDED.${column}`).join(",\n      ")},
      latency_ms_max = GREATEST(t.latency_ms_max, EXCLUDED.latency_ms_max)`;
}

function rowJson(row: Row): Record<string, unknown> {
  const { sums } = row;
  const json: Record<string, unknown> = {
    bucket: new Date(row.bucket * 1000).toISOString(),
    ...row.key,
    calls: sums.calls,
    errors: sums.errors,
    prompt_tokens: sums.promptTokens,
    completion_tokens: sums.completionTokens,
    cached_tokens: sums.cachedTokens,
    cost_usd: sums.costUsd,
    cache_hits: sums.cacheHits,
    latency_ms_sum: sums.latencyMsSum,
    latency_ms_max: sums.latencyMsMax,
  };
  sums.histogram.forEach((count, index) => {
    json[`h${index}`] = count;
  });
  return json;
}

/** Adds samples to every tier (one statement per tier, whatever the count). */
export async function writeRollups(
  client: pg.Pool | pg.PoolClient,
  samples: readonly RollupSample[],
): Promise<void> {
  if (samples.length === 0) return;
  for (const { table, seconds } of Object.values(TIERS)) {
    const rows = rowsOf(samples, seconds);
    await client.query(upsertSql(table), [JSON.stringify(rows.map(rowJson))]);
  }
}

/** Records the deepest queue seen per lane this minute. */
export async function writeQueueDepth(
  pool: pg.Pool,
  at: number,
  lanes: ReadonlyArray<{ lane: string; pending: number; ackPending: number }>,
): Promise<void> {
  if (lanes.length === 0) return;
  const bucket = new Date(Math.floor(at / 60_000) * 60_000).toISOString();
  await pool.query(
    `INSERT INTO stats_queue_minute AS q (bucket, lane, pending, ack_pending)
     SELECT $1::timestamptz, * FROM unnest($2::text[], $3::bigint[], $4::bigint[])
     ON CONFLICT (bucket, lane) DO UPDATE SET
       pending = GREATEST(q.pending, EXCLUDED.pending), ack_pending = GREATEST(q.ack_pending, EXCLUDED.ack_pending)`,
    [
      bucket,
      lanes.map((lane) => lane.lane),
      lanes.map((lane) => lane.pending),
      lanes.map((lane) => lane.ackPending),
    ],
  );
}

/** Drops rows older than each tier keeps. */
export async function pruneRollups(pool: pg.Pool): Promise<void> {
  for (const { table, keep } of Object.values(TIERS))
    await pool.query(`DELETE FROM ${table} WHERE bucket < now() - interval '${keep}'`);
  await pool.query(`DELETE FROM stats_queue_minute WHERE bucket < now() - interval '40 days'`);
}
