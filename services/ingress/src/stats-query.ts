import type pg from "pg";
import {
  ALL_TENANTS,
  addSums,
  BUCKET_COUNT,
  emptySums,
  quantileOf,
  type RollupSums,
  SLICE,
  TIERS,
  type Tier,
} from "./stats-rollups.js";

/** Time ranges the dashboard offers: the rollup tier each reads and its chart step. */
export const RANGES = {
  "15m": { seconds: 15 * 60, tier: "minute", step: 60 },
  "1h": { seconds: 3600, tier: "minute", step: 60 },
  "6h": { seconds: 6 * 3600, tier: "fiveMinutes", step: 300 },
  "24h": { seconds: 86_400, tier: "hour", step: 3600 },
  "7d": { seconds: 7 * 86_400, tier: "hour", step: 6 * 3600 },
  "30d": { seconds: 30 * 86_400, tier: "day", step: 86_400 },
} as const satisfies Record<string, { seconds: number; tier: Tier; step: number }>;
export type StatsRange = keyof typeof RANGES;

export interface Series {
  label: string;
  values: Array<number | null>;
}

export interface Hotspot {
  kind: "agent" | "tool" | "tenant" | "user" | "route" | "model";
  name: string;
  calls: number;
  p95Ms: number;
  errorRate: number;
  costUsd: number;
}

export interface CacheSaving {
  cache: "response" | "embedding" | "tool" | "provider prompt";
  /** Calls the cache answered; for the provider prompt cache, calls with cached prompt tokens. */
  hits: number;
  /** Calls that looked in the cache; for the provider prompt cache, chat calls that reached a provider. */
  calls: number;
  /** Tokens the provider served from its prompt cache (provider prompt cache only). */
  tokens: number;
  /**
   * Estimated at the average cost of a paid call of the same model or tool; for the provider
   * prompt cache, the cached tokens at the input price less the cached-input price.
   */
  savedUsd: number;
}

const SERIES_LIMIT = 8;
const HOTSPOT_LIMIT = 5;
/** Users considered for the hotspots: the dearest and the slowest (mean) this many each. */
const USER_CANDIDATES = 200;
/** The tier users' hotspots read: whole hours or days that cover the range (users are many). */
const USER_TIER: Record<StatsRange, Tier> = {
  "15m": "minute",
  "1h": "minute",
  "6h": "hour",
  "24h": "hour",
  "7d": "day",
  "30d": "day",
};
const SUM_COLUMNS: ReadonlyArray<readonly [string, "sum" | "max"]> = [
  ["calls", "sum"],
  ["errors", "sum"],
  ["prompt_tokens", "sum"],
  ["completion_tokens", "sum"],
  ["cached_tokens", "sum"],
  ["prompt_cache_saved_usd", "sum"],
  ["prompt_cache_hits", "sum"],
  ["cost_usd", "sum"],
  ["cache_hits", "sum"],
  ["latency_ms_sum", "sum"],
  ["latency_ms_max", "max"],
];
/**
 * The sums of a group of rows; the latency histogram as one comma-separated text column (one
 * field to read per row instead of twenty: reading rows is most of a query's time here).
 */
const SUMS_SQL = [
  ...SUM_COLUMNS.map(([column, aggregate]) => `${aggregate}(${column})::float8 AS ${column}`),
  `concat_ws(',', ${Array.from({ length: BUCKET_COUNT }, (_, index) => `sum(h${index})`).join(", ")}) AS histogram`,
].join(", ");

type SumsRow = Record<string, unknown>;

function sumsOf(row: SumsRow): RollupSums {
  const sums = emptySums();
  sums.calls = Number(row.calls);
  sums.errors = Number(row.errors);
  sums.promptTokens = Number(row.prompt_tokens);
  sums.completionTokens = Number(row.completion_tokens);
  sums.cachedTokens = Number(row.cached_tokens);
  sums.promptCacheSavedUsd = Number(row.prompt_cache_saved_usd);
  sums.promptCacheHits = Number(row.prompt_cache_hits);
  sums.costUsd = Number(row.cost_usd);
  sums.cacheHits = Number(row.cache_hits);
  sums.latencyMsSum = Number(row.latency_ms_sum);
  sums.latencyMsMax = Number(row.latency_ms_max);
  const histogram = String(row.histogram).split(",");
  for (let index = 0; index < BUCKET_COUNT; index++) sums.histogram[index] = Number(histogram[index] ?? 0);
  return sums;
}

/** Sums keyed by a label, per time bucket. */
class Grid {
  private readonly cells = new Map<string, Map<number, RollupSums>>();

  add(label: string, bucket: number, sums: RollupSums): void {
    let byTime = this.cells.get(label);
    if (!byTime) {
      byTime = new Map();
      this.cells.set(label, byTime);
    }
    let cell = byTime.get(bucket);
    if (!cell) {
      cell = emptySums();
      byTime.set(bucket, cell);
    }
    addSums(cell, sums);
  }

  /** One series per label (the `limit` largest by `rank`), a value per time (null where nothing happened). */
  series(
    times: readonly number[],
    value: (sums: RollupSums, label: string, time: number) => number | null,
    options: { rank?: (total: RollupSums) => number; limit?: number; suffix?: string } = {},
  ): Series[] {
    const rank = options.rank ?? ((total) => total.calls);
    return [...this.cells.entries()]
      .map(([label, byTime]) => {
        const total = emptySums();
        for (const sums of byTime.values()) addSums(total, sums);
        return { label, byTime, score: rank(total) };
      })
      .sort((a, b) => b.score - a.score || (a.label < b.label ? -1 : 1))
      .slice(0, options.limit ?? SERIES_LIMIT)
      .map(({ label, byTime }) => ({
        label: `${label}${options.suffix ?? ""}`,
        values: times.map((time) => {
          const sums = byTime.get(time);
          return sums ? value(sums, label, time) : null;
        }),
      }));
  }
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const tokensOf = (sums: RollupSums) => sums.promptTokens + sums.completionTokens;

/** Sums keyed by a name, over the whole range (the hotspots and totals). */
class Totals {
  readonly groups = {
    agent: new Map<string, RollupSums>(),
    tool: new Map<string, RollupSums>(),
    tenant: new Map<string, RollupSums>(),
    user: new Map<string, RollupSums>(),
    route: new Map<string, RollupSums>(),
    model: new Map<string, RollupSums>(),
  };
  /** Cost of an agent's or tenant's model and tool calls (its latency is its HTTP requests'). */
  readonly costs = { agent: new Map<string, number>(), tenant: new Map<string, number>() };
  /** Model and tool calls, per `<kind> <name>`. */
  readonly calls = new Map<string, RollupSums>();
  readonly work = emptySums();
  readonly requests = emptySums();

  add(map: Map<string, RollupSums>, key: string, sums: RollupSums): void {
    let into = map.get(key);
    if (!into) {
      into = emptySums();
      map.set(key, into);
    }
    addSums(into, sums);
  }

  addCost(map: Map<string, number>, key: string, cost: number): void {
    map.set(key, (map.get(key) ?? 0) + cost);
  }
}

/**
 * Everything the dashboard draws for one tenant (or all, `tenant` undefined) over `range`:
 * latency percentiles per service and agent, tokens and USD by model, agent and tenant,
 * error rate per service and code (ingress refusals included), throughput, queue depth
 * per lane, shed requests, hotspots and cache savings.
 *
 * Each query reads only the rollup slices of the view's own tenant (`*` for all) that one
 * part of the page needs, in the tier of the range, and only the columns it draws: latency
 * histograms per service and agent, spend per agent, model and tenant, error counts per
 * code, the range's totals per model, tool, route and tenant (hotspots), users, queue depth.
 */
export async function dashboardStats(pool: pg.Pool, tenant: string | undefined, range: StatsRange) {
  const started = performance.now();
  const { seconds, tier, step } = RANGES[range];
  const { table, queue: queueTable, seconds: grain } = TIERS[tier];
  const now = Math.floor(Date.now() / 1000);
  const from = Math.floor((now - seconds) / step) * step + step;
  const times: number[] = [];
  for (let time = from; time <= now; time += step) times.push(time);
  const owner = tenant ?? ALL_TENANTS;
  // the rows that name a tenant: its per-service rows in a tenant's view, the per-tenant ones in all
  const tenantSlice = tenant === undefined ? SLICE.tenant : SLICE.service;
  const time =
    step === grain
      ? "extract(epoch FROM bucket)::bigint"
      : `extract(epoch FROM date_bin('${step} seconds'::interval, bucket, 'epoch'::timestamptz))::bigint`;
  const where = "tenant = $1 AND bucket >= to_timestamp($2)";
  const userTier = TIERS[USER_TIER[range]];
  const userFrom = Math.floor(from / userTier.seconds) * userTier.seconds;
  const query = (sql: string) => pool.query(sql, [owner, from]);

  const [latency, spent, failed, named, users, queue] = await Promise.all([
    // per service (latency, throughput, totals) and per agent of the HTTP requests (latency)
    query(
      `SELECT ${time} AS time, slice, service, agent, ${SUMS_SQL} FROM ${table}
       WHERE ${where} AND (slice = ${SLICE.service} OR (slice = ${SLICE.agent} AND service = 'ingress' AND agent <> ''))
       GROUP BY 1, slice, service, agent`,
    ),
    // tokens and USD of model and tool calls per agent, model or tool, and tenant
    query(
      `SELECT ${time} AS time, slice, kind, name, agent, sum(prompt_tokens + completion_tokens)::float8 AS tokens,
         sum(cost_usd) AS cost_usd
       FROM ${table}
       WHERE ${where} AND slice IN (${SLICE.agent}, ${SLICE.name}, ${tenantSlice}) AND service <> 'ingress'
       GROUP BY 1, slice, kind, name, agent`,
    ),
    query(
      `SELECT ${time} AS time, service, code, sum(errors)::float8 AS errors FROM ${table}
       WHERE ${where} AND slice = ${SLICE.code} GROUP BY 1, service, code HAVING sum(errors) > 0`,
    ),
    // the range's totals per model, tool and route, and per tenant of the HTTP requests
    query(
      `SELECT slice, service, kind, name, ${SUMS_SQL} FROM ${table}
       WHERE ${where} AND (slice = ${SLICE.name} OR (slice = ${tenantSlice} AND service = 'ingress'))
       GROUP BY slice, service, kind, name`,
    ),
    // users are kept under their tenant only: all tenants' view reads every tenant's
    pool.query(
      `WITH users AS (
         SELECT name, ${SUMS_SQL} FROM ${userTier.table}
         WHERE slice = ${SLICE.user} AND bucket >= to_timestamp($1) ${tenant === undefined ? "" : "AND tenant = $2"}
         GROUP BY name
       )
       (SELECT * FROM users ORDER BY cost_usd DESC, name LIMIT ${USER_CANDIDATES})
       UNION
       (SELECT * FROM users ORDER BY latency_ms_sum / greatest(calls, 1) DESC, name LIMIT ${USER_CANDIDATES})`,
      tenant === undefined ? [userFrom] : [userFrom, tenant],
    ),
    pool.query(
      `SELECT ${time} AS time, lane, max(pending)::float8 AS pending, max(ack_pending)::float8 AS ack_pending
       FROM ${queueTable} WHERE bucket >= to_timestamp($1) GROUP BY 1, lane`,
      [from],
    ),
  ]);

  const serviceLatency = new Grid();
  const agentLatency = new Grid();
  const spend = { model: new Grid(), agent: new Grid(), tenant: new Grid() };
  const serviceCalls = new Grid();
  const errorCodes = new Grid();
  const shed = new Grid();
  const callsPer = new Map<string, Map<number, number>>();
  const totals = new Totals();
  for (const row of latency.rows) {
    const at = Number(row.time);
    const sums = sumsOf(row);
    const { service, agent } = row as Record<string, string>;
    if (Number(row.slice) === SLICE.agent) {
      agentLatency.add(agent!, at, sums);
      totals.add(totals.groups.agent, agent!, sums);
      continue;
    }
    const perTime = callsPer.get(service!) ?? new Map<number, number>();
    perTime.set(at, (perTime.get(at) ?? 0) + sums.calls);
    callsPer.set(service!, perTime);
    serviceLatency.add(service!, at, sums);
    serviceCalls.add(service!, at, sums);
    addSums(service === "ingress" ? totals.requests : totals.work, sums);
  }
  for (const row of spent.rows) {
    const at = Number(row.time);
    const sums = emptySums();
    sums.promptTokens = Number(row.tokens);
    sums.costUsd = Number(row.cost_usd);
    const { kind, name, agent } = row as Record<string, string>;
    switch (Number(row.slice)) {
      case SLICE.agent:
        if (!agent) break;
        spend.agent.add(agent, at, sums);
        totals.addCost(totals.costs.agent, agent, sums.costUsd);
        break;
      case SLICE.name:
        spend.model.add(kind === "tool" ? `tool ${name}` : name!, at, sums);
        break;
      default: {
        const label = tenant ?? name!;
        spend.tenant.add(label, at, sums);
        totals.addCost(totals.costs.tenant, label, sums.costUsd);
      }
    }
  }
  for (const row of failed.rows) {
    const at = Number(row.time);
    const { service, code } = row as Record<string, string>;
    const sums = emptySums();
    sums.errors = Number(row.errors);
    sums.calls = sums.errors;
    errorCodes.add(`${service} ${code}`, at, sums);
    if (code === "429" || code === "503" || code === "overloaded" || code === "rate_limited")
      shed.add(service!, at, sums);
  }
  for (const row of named.rows) {
    const sums = sumsOf(row);
    const { service, kind, name } = row as Record<string, string>;
    if (Number(row.slice) !== SLICE.name) totals.add(totals.groups.tenant, tenant ?? name!, sums);
    else if (service === "ingress") totals.add(totals.groups.route, name!, sums);
    else {
      totals.add(kind === "tool" ? totals.groups.tool : totals.groups.model, name!, sums);
      totals.add(totals.calls, `${kind} ${name}`, sums);
    }
  }
  for (const row of users.rows) totals.add(totals.groups.user, String(row.name), sumsOf(row));

  const percentiles = (grid: Grid) =>
    ([0.5, 0.95, 0.99] as const).flatMap((q) =>
      grid.series(times, (sums) => quantileOf(sums.histogram, q, sums.latencyMsMax), {
        suffix: ` p${Math.round(q * 100)}`,
        limit: 5,
      }),
    );
  const spendSeries = (grid: Grid, value: (sums: RollupSums) => number) =>
    grid.series(times, value, { rank: (total) => total.costUsd * 1e6 + tokensOf(total) });

  const queueGrid = {
    pending: new Map<string, Map<number, number>>(),
    ack: new Map<string, Map<number, number>>(),
  };
  for (const row of queue.rows) {
    const lane = String(row.lane);
    if (!queueGrid.pending.has(lane)) queueGrid.pending.set(lane, new Map());
    if (!queueGrid.ack.has(lane)) queueGrid.ack.set(lane, new Map());
    queueGrid.pending.get(lane)!.set(Number(row.time), Number(row.pending));
    queueGrid.ack.get(lane)!.set(Number(row.time), Number(row.ack_pending));
  }
  const queueSeries: Series[] = [];
  for (const lane of ["interactive", "batch"]) {
    for (const [suffix, grid] of [
      ["pending", queueGrid.pending],
      ["in progress", queueGrid.ack],
    ] as const) {
      const byTime = grid.get(lane);
      queueSeries.push({
        label: `${lane} ${suffix}`,
        values: times.map((time) => byTime?.get(time) ?? null),
      });
    }
  }

  return {
    tenant: tenant ?? "*",
    range,
    tier,
    stepSeconds: step,
    times,
    latency: { byService: percentiles(serviceLatency), byAgent: percentiles(agentLatency) },
    tokens: {
      model: spendSeries(spend.model, tokensOf),
      agent: spendSeries(spend.agent, tokensOf),
      tenant: spendSeries(spend.tenant, tokensOf),
    },
    costUsd: {
      model: spendSeries(spend.model, (sums) => round(sums.costUsd, 6)),
      agent: spendSeries(spend.agent, (sums) => round(sums.costUsd, 6)),
      tenant: spendSeries(spend.tenant, (sums) => round(sums.costUsd, 6)),
    },
    errorRate: errorCodes.series(
      times,
      (sums, label, time) => {
        const calls = callsPer.get(label.split(" ")[0]!)?.get(time) ?? 0;
        return calls > 0 ? round((100 * sums.errors) / calls) : null;
      },
      { rank: (total) => total.errors },
    ),
    throughput: serviceCalls.series(times, (sums) => round(sums.calls / (step / 60), 2)),
    queue: queueSeries,
    shed: shed.series(times, (sums) => sums.calls),
    ...summaries(totals),
    queryMs: round(performance.now() - started, 1),
  };
}

function summaries(totals: Totals) {
  const { groups, costs } = totals;
  const hotspots: Hotspot[] = [];
  for (const [kind, map] of Object.entries(groups) as Array<[Hotspot["kind"], Map<string, RollupSums>]>) {
    const entries = [...map.entries()].map(([name, sums]) => ({
      kind,
      name,
      calls: sums.calls,
      p95Ms: quantileOf(sums.histogram, 0.95, sums.latencyMsMax),
      errorRate: sums.calls > 0 ? round((100 * sums.errors) / sums.calls) : 0,
      costUsd: round(
        kind === "agent"
          ? (costs.agent.get(name) ?? 0)
          : kind === "tenant"
            ? (costs.tenant.get(name) ?? 0)
            : sums.costUsd,
        6,
      ),
    }));
    const slowest = [...entries].sort((a, b) => b.p95Ms - a.p95Ms).slice(0, HOTSPOT_LIMIT);
    const dearest = [...entries].sort((a, b) => b.costUsd - a.costUsd).slice(0, HOTSPOT_LIMIT);
    const picked = [...new Set([...slowest, ...dearest])].sort((a, b) => b.p95Ms - a.p95Ms);
    hotspots.push(...picked);
  }
  const cacheSavings: CacheSaving[] = (
    [
      ["response", "model-chat"],
      ["embedding", "model-embed"],
      ["tool", "tool"],
    ] as const
  ).map(([cache, kind]) => {
    let hits = 0;
    let calls = 0;
    let savedUsd = 0;
    for (const [key, entry] of totals.calls) {
      if (!key.startsWith(`${kind} `)) continue;
      hits += entry.cacheHits;
      calls += entry.calls;
      const paid = entry.calls - entry.cacheHits;
      if (paid > 0) savedUsd += (entry.costUsd / paid) * entry.cacheHits;
    }
    return { cache, hits, calls, tokens: 0, savedUsd: round(savedUsd, 6) };
  });
  // the provider's prompt cache: chat calls that reached a provider (not answered by the response cache)
  const prompts = emptySums();
  for (const [key, entry] of totals.calls) if (key.startsWith("model-chat ")) addSums(prompts, entry);
  cacheSavings.push({
    cache: "provider prompt",
    hits: prompts.promptCacheHits,
    calls: prompts.calls - prompts.cacheHits,
    tokens: prompts.cachedTokens,
    savedUsd: round(prompts.promptCacheSavedUsd, 6),
  });
  const { work, requests } = totals;
  return {
    totals: {
      calls: work.calls,
      errors: work.errors,
      tokens: tokensOf(work),
      costUsd: round(work.costUsd, 6),
      requests: requests.calls,
      refused: requests.errors,
    },
    hotspots,
    cacheSavings,
  };
}
