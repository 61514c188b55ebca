import { migrate } from "@agent-runtime/stores";
import type pg from "pg";

/**
 * Time-bucketed rollups behind `/v1/stats/series` and the dashboard, in four tiers: per
 * minute and per 5 minutes (kept 3 days), per hour (kept 40 days) and per day (kept 400
 * days); each dashboard range reads the tier of its chart step, so no range reads more
 * than 168 buckets.
 *
 * A row is not one (tenant, service, kind, name, agent, code) combination but one *slice*
 * the dashboard draws: per service, per service and code, per service and agent, per
 * service and model/tool/route name, per user, and (for all tenants) per service and
 * tenant. Each is kept for its tenant and again for all tenants (`tenant = '*'`, which no
 * tenant id can be), so a view reads only its own slices and never sums across the
 * combinations a busy multi-tenant runtime produces (thousands per minute).
 *
 * Latency is kept as a fixed histogram (`h0`…`h19`, upper bounds in `LATENCY_BOUNDS_MS`),
 * so percentiles of any slice and range are read from summed buckets.
 *
 * Writers aggregate samples in memory (`RollupBuffer`) and write each flush as one
 * multi-row upsert into every tier (`writeRollupRows`).
 */

/** Upper bounds (ms) of the latency buckets; the last bucket is everything above. */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  5, 10, 25, 50, 100, 150, 250, 400, 600, 800, 1000, 1500, 2000, 3000, 5000, 8000, 12000, 20000, 40000,
];
export const BUCKET_COUNT = LATENCY_BOUNDS_MS.length + 1;
const BUCKETS = Array.from({ length: BUCKET_COUNT }, (_, index) => `h${index}`);

export const TIERS = {
  minute: { table: "rollup_minute", queue: "queue_depth_minute", seconds: 60, keep: "3 days" },
  fiveMinutes: {
    table: "rollup_five_minutes",
    queue: "queue_depth_five_minutes",
    seconds: 300,
    keep: "3 days",
  },
  hour: { table: "rollup_hour", queue: "queue_depth_hour", seconds: 3600, keep: "40 days" },
  day: { table: "rollup_day", queue: "queue_depth_day", seconds: 86_400, keep: "400 days" },
} as const;
export type Tier = keyof typeof TIERS;
const TIER_NAMES = Object.keys(TIERS) as Tier[];

/** The tiers that keep users (the hotspots read users per minute, hour or day). */
export const USER_TIERS: readonly Tier[] = ["minute", "hour", "day"];

/** The tenant of the rows that count every tenant. */
export const ALL_TENANTS = "*";

/** What a rollup row sums over; the columns a slice does not split by are ''. */
export const SLICE = {
  /** per service */
  service: 1,
  /** per service and code (`ok`, an error code or an HTTP status) */
  code: 2,
  /** per service and agent ('' for calls made for no agent) */
  agent: 3,
  /** per service, kind and name (model, tool, route) */
  name: 4,
  /** per service and tenant (`name`), only in the all-tenants rows */
  tenant: 5,
  /** per user (`name` is `<tenant>/<user>`), only in its tenant's rows and in `USER_TIERS` */
  user: 6,
} as const;
export type Slice = (typeof SLICE)[keyof typeof SLICE];

/** What a sample is about. `code` is `ok`, an error code or an HTTP status. */
export interface RollupKey {
  tenant: string;
  /** `ingress`, `model-proxy`, `tool-executor`; `users` for per-user samples. */
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
  /** USD those cached tokens saved (input price less cached-input price). */
  promptCacheSavedUsd: number;
  /** Provider calls whose prompt was partly served from the provider's prompt cache. */
  promptCacheHits: number;
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
  promptCacheSavedUsd?: number;
  /** The provider served part of this call's prompt from its prompt cache. */
  promptCacheHit?: boolean;
  costUsd?: number;
  cacheHit?: boolean;
}

/** One row of one tier, as written. */
export interface RollupRow {
  tier: Tier;
  /** Epoch seconds of the bucket's start. */
  bucket: number;
  tenant: string;
  slice: Slice;
  service: string;
  kind: string;
  name: string;
  agent: string;
  code: string;
  sums: RollupSums;
}

const KEY_COLUMNS = ["tenant", "slice", "bucket", "service", "kind", "name", "agent", "code"];

export const ROLLUP_MIGRATIONS = Object.values(TIERS)
  .flatMap(({ table, queue }) => [
    // fillfactor: room on each page, so the upserts of a bucket are HOT updates (no index write)
    `CREATE TABLE IF NOT EXISTS ${table} (
     tenant text NOT NULL,
     slice smallint NOT NULL,
     bucket timestamptz NOT NULL,
     service text NOT NULL,
     kind text NOT NULL DEFAULT '',
     name text NOT NULL DEFAULT '',
     agent text NOT NULL DEFAULT '',
     code text NOT NULL DEFAULT '',
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
     PRIMARY KEY (${KEY_COLUMNS.join(", ")})
   ) WITH (fillfactor = 70)`,
    // for pruning by age: tiny, and rows arrive in time order
    `CREATE INDEX IF NOT EXISTS ${table}_bucket ON ${table} USING brin (bucket)`,
    `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS prompt_cache_saved_usd double precision NOT NULL DEFAULT 0`,
    `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS prompt_cache_hits bigint NOT NULL DEFAULT 0`,
    // every tenant's users, for the all-tenants view
    `CREATE INDEX IF NOT EXISTS ${table}_users ON ${table} (bucket) WHERE slice = ${SLICE.user}`,
    // the deepest pending and in-progress counts seen per lane and bucket
    `CREATE TABLE IF NOT EXISTS ${queue} (
     bucket timestamptz NOT NULL,
     lane text NOT NULL,
     pending bigint NOT NULL DEFAULT 0,
     ack_pending bigint NOT NULL DEFAULT 0,
     PRIMARY KEY (bucket, lane)
   )`,
  ])
  // the first dashboard's tables: one row per combination, queue depth per minute only
  .concat(["DROP TABLE IF EXISTS stats_minute, stats_hour, stats_day, stats_queue_minute"]);

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
    promptCacheSavedUsd: 0,
    promptCacheHits: 0,
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
  into.promptCacheSavedUsd += from.promptCacheSavedUsd;
  into.promptCacheHits += from.promptCacheHits;
  into.costUsd += from.costUsd;
  into.cacheHits += from.cacheHits;
  into.latencyMsSum += from.latencyMsSum;
  into.latencyMsMax = Math.max(into.latencyMsMax, from.latencyMsMax);
  for (let index = 0; index < BUCKET_COUNT; index++)
    into.histogram[index] = (into.histogram[index] ?? 0) + (from.histogram[index] ?? 0);
}

function addSample(into: RollupSums, sample: RollupSample): void {
  into.calls += 1;
  into.errors += sample.error ? 1 : 0;
  into.promptTokens += sample.promptTokens ?? 0;
  into.completionTokens += sample.completionTokens ?? 0;
  into.cachedTokens += sample.cachedTokens ?? 0;
  into.promptCacheSavedUsd += sample.promptCacheSavedUsd ?? 0;
  into.promptCacheHits += sample.promptCacheHit ? 1 : 0;
  into.costUsd += sample.costUsd ?? 0;
  into.cacheHits += sample.cacheHit ? 1 : 0;
  into.latencyMsSum += sample.latencyMs;
  into.latencyMsMax = Math.max(into.latencyMsMax, sample.latencyMs);
  const bucket = bucketOf(sample.latencyMs);
  into.histogram[bucket] = (into.histogram[bucket] ?? 0) + 1;
}

type SliceKey = Pick<RollupRow, "tenant" | "slice" | "service" | "kind" | "name" | "agent" | "code">;

/** The slices one combination adds to: its own tenant's and the all-tenants rows. */
export function slicesOf(key: RollupKey): SliceKey[] {
  const { tenant, service, kind, name, agent, code } = key;
  const blank = { kind: "", name: "", agent: "", code: "" };
  // users are many: kept once, under their tenant (the all-tenants view reads every tenant's)
  if (kind === "user")
    return [{ tenant, slice: SLICE.user, service, ...blank, kind, name: `${tenant}/${name}` }];
  return [tenant, ALL_TENANTS]
    .flatMap((owner): SliceKey[] => [
      { tenant: owner, slice: SLICE.service, service, ...blank },
      { tenant: owner, slice: SLICE.code, service, ...blank, code },
      { tenant: owner, slice: SLICE.agent, service, ...blank, agent },
      { tenant: owner, slice: SLICE.name, service, ...blank, kind, name },
    ])
    .concat([{ tenant: ALL_TENANTS, slice: SLICE.tenant, service, ...blank, name: tenant }]);
}

const SEPARATOR = "\u0000";

/**
 * Samples summed in memory until taken: per minute and combination as they arrive (one map
 * update per sample), spread over slices and tiers only when taken.
 */
export class RollupBuffer {
  private readonly minutes = new Map<string, { minute: number; key: RollupKey; sums: RollupSums }>();

  get size(): number {
    return this.minutes.size;
  }

  add(sample: RollupSample): void {
    const minute = Math.floor(sample.at / 60_000) * 60;
    const { tenant, service, kind, name, agent, code } = sample;
    const id = [minute, tenant, service, kind, name, agent, code].join(SEPARATOR);
    let entry = this.minutes.get(id);
    if (!entry) {
      entry = { minute, key: { tenant, service, kind, name, agent, code }, sums: emptySums() };
      this.minutes.set(id, entry);
    }
    addSample(entry.sums, sample);
  }

  /** The rows of every tier for what was added, in key order; empties the buffer. */
  take(): RollupRow[] {
    const rows = new Map<string, RollupRow>();
    for (const { minute, key, sums } of this.minutes.values()) {
      for (const slice of slicesOf(key)) {
        for (const tier of TIER_NAMES) {
          if (slice.slice === SLICE.user && !USER_TIERS.includes(tier)) continue;
          const seconds = TIERS[tier].seconds;
          const bucket = Math.floor(minute / seconds) * seconds;
          const id = [tier, slice.tenant, slice.slice, bucket, slice.service, slice.kind, slice.name]
            .concat([slice.agent, slice.code])
            .join(SEPARATOR);
          let row = rows.get(id);
          if (!row) {
            row = { tier, bucket, ...slice, sums: emptySums() };
            rows.set(id, row);
          }
          addSums(row.sums, sums);
        }
      }
    }
    this.minutes.clear();
    // key order: concurrent writers (other replicas) lock shared rows in the same order
    return [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
  }
}

const SUM_COLUMNS = [
  "calls",
  "errors",
  "prompt_tokens",
  "completion_tokens",
  "cached_tokens",
  "prompt_cache_saved_usd",
  "prompt_cache_hits",
  "cost_usd",
  "cache_hits",
  "latency_ms_sum",
  ...BUCKETS,
];
const COLUMNS = [...KEY_COLUMNS, ...SUM_COLUMNS, "latency_ms_max"];

function columnType(column: string): string {
  if (column === "bucket") return "timestamptz";
  if (column === "slice") return "smallint";
  if (KEY_COLUMNS.includes(column)) return "text";
  return column.endsWith("_usd") || column.startsWith("latency") ? "float8" : "bigint";
}

/** One statement that adds rows into every tier: a data-modifying CTE per tier but the last. */
const UPSERT_SQL = (() => {
  const upsert = (tier: Tier) => `INSERT INTO ${TIERS[tier].table} AS t (${COLUMNS.join(", ")})
    SELECT ${COLUMNS.join(", ")} FROM rows WHERE tier = '${tier}'
    ON CONFLICT (${KEY_COLUMNS.join(", ")}) DO UPDATE SET
      ${SUM_COLUMNS.map((column) => `${column} = t.${column} + EXCLUDED.${column}`).join(", ")},
      latency_ms_max = GREATEST(t.latency_ms_max, EXCLUDED.latency_ms_max)`;
  const last = TIER_NAMES.at(-1)!;
  return `WITH rows AS MATERIALIZED (
      SELECT * FROM jsonb_to_recordset($1::jsonb)
        AS r(tier text, ${COLUMNS.map((column) => `${column} ${columnType(column)}`).join(", ")})
    ),
    ${TIER_NAMES.slice(0, -1)
      .map((tier) => `${tier}_rows AS (${upsert(tier)})`)
      .join(",\n    ")}
    ${upsert(last)}`;
})();

function rowJson(row: RollupRow): Record<string, unknown> {
  const { sums } = row;
  const json: Record<string, unknown> = {
    tier: row.tier,
    tenant: row.tenant,
    slice: row.slice,
    bucket: new Date(row.bucket * 1000).toISOString(),
    service: row.service,
    kind: row.kind,
    name: row.name,
    agent: row.agent,
    code: row.code,
    calls: sums.calls,
    errors: sums.errors,
    prompt_tokens: sums.promptTokens,
    completion_tokens: sums.completionTokens,
    cached_tokens: sums.cachedTokens,
    prompt_cache_saved_usd: sums.promptCacheSavedUsd,
    prompt_cache_hits: sums.promptCacheHits,
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

/** Adds rows (of `RollupBuffer.take`) into their tiers in one statement. */
export async function writeRollupRows(
  client: pg.Pool | pg.PoolClient,
  rows: readonly RollupRow[],
): Promise<void> {
  if (rows.length === 0) return;
  await client.query(UPSERT_SQL, [JSON.stringify(rows.map(rowJson))]);
}

/** Sums samples in memory and adds them to every tier in one statement. */
export async function writeRollups(
  client: pg.Pool | pg.PoolClient,
  samples: readonly RollupSample[],
): Promise<void> {
  const buffer = new RollupBuffer();
  for (const sample of samples) buffer.add(sample);
  await writeRollupRows(client, buffer.take());
}

/** Records the deepest queue seen per lane in this minute, hour and day (one statement). */
export async function writeQueueDepth(
  pool: pg.Pool,
  at: number,
  lanes: ReadonlyArray<{ lane: string; pending: number; ackPending: number }>,
): Promise<void> {
  if (lanes.length === 0) return;
  const upsert = (tier: Tier) => `INSERT INTO ${TIERS[tier].queue} AS q (bucket, lane, pending, ack_pending)
     SELECT to_timestamp(floor($1::float8 / ${TIERS[tier].seconds}) * ${TIERS[tier].seconds}), lane, pending, ack_pending FROM lanes
     ON CONFLICT (bucket, lane) DO UPDATE SET
       pending = GREATEST(q.pending, EXCLUDED.pending), ack_pending = GREATEST(q.ack_pending, EXCLUDED.ack_pending)`;
  await pool.query(
    `WITH lanes AS MATERIALIZED (
       SELECT * FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS l(lane, pending, ack_pending)
     ),
     ${TIER_NAMES.slice(0, -1)
       .map((tier) => `${tier}_depth AS (${upsert(tier)})`)
       .join(",\n     ")}
     ${upsert(TIER_NAMES.at(-1)!)}`,
    [
      at / 1000,
      lanes.map((lane) => lane.lane),
      lanes.map((lane) => lane.pending),
      lanes.map((lane) => lane.ackPending),
    ],
  );
}

/** Drops rows older than each tier keeps. */
export async function pruneRollups(pool: pg.Pool): Promise<void> {
  for (const { table, queue, keep } of Object.values(TIERS)) {
    await pool.query(`DELETE FROM ${table} WHERE bucket < now() - interval '${keep}'`);
    await pool.query(`DELETE FROM ${queue} WHERE bucket < now() - interval '${keep}'`);
  }
}
