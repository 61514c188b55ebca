import type pg from "pg";
import {
  addSums,
  BUCKET_COUNT,
  emptySums,
  quantileOf,
  type RollupSums,
  TIERS,
  type Tier,
} from "./stats-rollups.js";

/** Time ranges the dashboard offers: the rollup tier each reads and its chart step. */
export const RANGES = {
  "15m": { seconds: 15 * 60, tier: "minute", step: 60 },
  "1h": { seconds: 3600, tier: "minute", step: 60 },
  "6h": { seconds: 6 * 3600, tier: "minute", step: 300 },
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
  hits: number;
  calls: number;
  /** Tokens the provider served from its prompt cache (provider prompt cache only). */
  tokens: number;
  /** Estimated at the average cost of a paid call of the same model or tool. */
  savedUsd: number;
}

const SERIES_LIMIT = 8;
const HOTSPOT_LIMIT = 5;
const SUMS_SQL = `sum(calls)::float8 AS calls, sum(errors)::float8 AS errors, sum(prompt_tokens)::float8 AS prompt_tokens,
  sum(completion_tokens)::float8 AS completion_tokens, sum(cached_tokens)::float8 AS cached_tokens, sum(cost_usd) AS cost_usd,
  sum(cache_hits)::float8 AS cache_hits, sum(latency_ms_sum) AS latency_ms_sum, max(latency_ms_max) AS latency_ms_max,
  ${Array.from({ length: BUCKET_COUNT }, (_, index) => `sum(h${index})::float8 AS h${index}`).join(", ")}`;

type SumsRow = Record<string, unknown>;

function sumsOf(row: SumsRow): RollupSums {
  const sums = emptySums();
  sums.calls = Number(row.calls);
  sums.errors = Number(row.errors);
  sums.promptTokens = Number(row.prompt_tokens);
  sums.completionTokens = Number(row.completion_tokens);
  sums.cachedTokens = Number(row.cached_tokens);
  sums.costUsd = Number(row.cost_usd);
  sums.cacheHits = Number(row.cache_hits);
  sums.latencyMsSum = Number(row.latency_ms_sum);
  sums.latencyMsMax = Number(row.latency_ms_max);
  for (let index = 0; index < BUCKET_COUNT; index++) sums.histogram[index] = Number(row[`h${index}`]);
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

  labels(): string[] {
    return [...this.cells.keys()];
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

/**
 * Everything the dashboard draws for one tenant (or all, `tenant` undefined) over `range`:
 * latency percentiles per service and agent, tokens and USD by model, agent and tenant,
 * error rate per service and code (ingress refusals included), throughput, queue depth
 * per lane, shed requests, hotspots and cache savings. Four queries over one rollup tier.
 */
export async function dashboardStats(pool: pg.Pool, tenant: string | undefined, range: StatsRange) {
  const started = performance.now();
  const { seconds, tier, step } = RANGES[range];
  const { table } = TIERS[tier];
  const now = Math.floor(Date.now() / 1000);
  const from = Math.floor((now - seconds) / step) * step + step;
  const times: number[] = [];
  for (let time = from; time <= now; time += step) times.push(time);
  const since = `to_timestamp($1)`;
  const filter = tenant === undefined ? "" : "AND tenant = $3";
  const parameters = tenant === undefined ? [from, `${step} seconds`] : [from, `${step} seconds`, tenant];
  // grouped by the binned timestamp, converted to epoch seconds once per group
  const binned = "date_bin($2::interval, bucket, 'epoch'::timestamptz)";
  const bucketSql = `extract(epoch FROM ${binned})::bigint AS time`;
  const query = (sql: string, values: unknown[]) => boundedQuery(pool, sql, values);

  const [charts, byTenant, hotspotRows, queue] = await Promise.all([
    query(
      // only the slices the charts draw: per service, per service and code, agent, model or tool
      `SELECT ${bucketSql}, service, kind, name, agent, code, GROUPING(code) AS no_code, GROUPING(agent) AS no_agent,
         GROUPING(name) AS no_name, ${SUMS_SQL}
       FROM ${table} WHERE bucket >= ${since} AND kind <> 'user' ${filter}
       GROUP BY ${binned}, GROUPING SETS ((service), (service, code), (service, agent), (service, kind, name))`,
      parameters,
    ),
    query(
      `SELECT ${bucketSql}, tenant, sum(prompt_tokens + completion_tokens)::float8 AS tokens, sum(cost_usd) AS cost_usd
       FROM ${table} WHERE bucket >= ${since} AND kind <> 'user' AND service <> 'ingress' ${filter}
       GROUP BY ${binned}, tenant`,
      parameters,
    ),
    query(
      `SELECT tenant, service, kind, name, agent, ${SUMS_SQL}
       FROM ${table} WHERE bucket >= ${since} ${tenant === undefined ? "" : "AND tenant = $2"}
       GROUP BY tenant, service, kind, name, agent`,
      tenant === undefined ? [from] : [from, tenant],
    ),
    query(
      `SELECT ${bucketSql}, lane, max(pending)::float8 AS pending, max(ack_pending)::float8 AS ack_pending
       FROM stats_queue_minute WHERE bucket >= ${since} GROUP BY ${binned}, lane`,
      [from, `${step} seconds`],
    ),
  ]);

  const serviceLatency = new Grid();
  const agentLatency = new Grid();
  const spend = { model: new Grid(), agent: new Grid(), tenant: new Grid() };
  const serviceCalls = new Grid();
  const errorCodes = new Grid();
  const shed = new Grid();
  const callsPer = new Map<string, Map<number, number>>();
  for (const row of charts.rows) {
    const time = Number(row.time);
    const sums = sumsOf(row);
    const { service, kind, name, agent, code } = row as Record<string, string>;
    if (row.no_code === 0) {
      if (sums.errors > 0) errorCodes.add(`${service} ${code}`, time, sums);
      if (code === "429" || code === "503" || code === "overloaded" || code === "rate_limited")
        shed.add(service!, time, sums);
    } else if (row.no_agent === 0) {
      if (agent && service === "ingress") agentLatency.add(agent, time, sums);
      else if (agent) spend.agent.add(agent, time, sums);
    } else if (row.no_name === 0) {
      if (service !== "ingress") spend.model.add(kind === "tool" ? `tool ${name}` : name!, time, sums);
    } else {
      const perTime = callsPer.get(service!) ?? new Map<number, number>();
      perTime.set(time, (perTime.get(time) ?? 0) + sums.calls);
      callsPer.set(service!, perTime);
      serviceLatency.add(service!, time, sums);
      serviceCalls.add(service!, time, sums);
    }
  }
  for (const row of byTenant.rows) {
    const sums = emptySums();
    sums.promptTokens = Number(row.tokens);
    sums.costUsd = Number(row.cost_usd);
    spend.tenant.add(String(row.tenant), Number(row.time), sums);
  }
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
    ...summaries(hotspotRows.rows),
    queryMs: round(performance.now() - started, 1),
  };
}

/** One query with enough memory to aggregate in a hash table without spilling to disk. */
async function boundedQuery(pool: pg.Pool, sql: string, values: unknown[]): Promise<pg.QueryResult> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN READ ONLY");
    await client.query("SET LOCAL work_mem = '64MB'");
    const result = await client.query(sql, values);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

function summaries(rows: SumsRow[]) {
  const groups = {
    agent: new Map<string, RollupSums>(),
    tool: new Map<string, RollupSums>(),
    tenant: new Map<string, RollupSums>(),
    user: new Map<string, RollupSums>(),
    route: new Map<string, RollupSums>(),
    model: new Map<string, RollupSums>(),
  };
  const costs = { agent: new Map<string, number>(), tenant: new Map<string, number>() };
  const caches = new Map<string, { hits: number; calls: number; tokens: number; paidCost: number }>();
  const totals = emptySums();
  const add = (map: Map<string, RollupSums>, key: string, sums: RollupSums) => {
    let into = map.get(key);
    if (!into) {
      into = emptySums();
      map.set(key, into);
    }
    addSums(into, sums);
  };
  const addCost = (map: Map<string, number>, key: string, cost: number) =>
    map.set(key, (map.get(key) ?? 0) + cost);
  const cacheOf = (key: string) => {
    let entry = caches.get(key);
    if (!entry) {
      entry = { hits: 0, calls: 0, tokens: 0, paidCost: 0 };
      caches.set(key, entry);
    }
    return entry;
  };
  for (const row of rows) {
    const sums = sumsOf(row);
    const { tenant, service, kind, name, agent } = row as Record<string, string>;
    if (kind === "user") {
      add(groups.user, `${tenant}/${name}`, sums);
      continue;
    }
    if (service === "ingress") {
      add(groups.route, name!, sums);
      add(groups.tenant, tenant!, sums);
      if (agent) add(groups.agent, agent, sums);
      continue;
    }
    addSums(totals, sums);
    addCost(costs.tenant, tenant!, sums.costUsd);
    if (agent) addCost(costs.agent, agent, sums.costUsd);
    add(kind === "tool" ? groups.tool : groups.model, name!, sums);
    const cache = cacheOf(`${kind} ${name}`);
    cache.hits += sums.cacheHits;
    cache.calls += sums.calls;
    cache.tokens += sums.cachedTokens;
    cache.paidCost += sums.costUsd;
  }
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
    for (const [key, entry] of caches) {
      if (!key.startsWith(`${kind} `)) continue;
      hits += entry.hits;
      calls += entry.calls;
      const paid = entry.calls - entry.hits;
      if (paid > 0) savedUsd += (entry.paidCost / paid) * entry.hits;
    }
    return { cache, hits, calls, tokens: 0, savedUsd: round(savedUsd, 6) };
  });
  cacheSavings.push({
    cache: "provider prompt",
    hits: 0,
    calls: totals.calls,
    tokens: totals.cachedTokens,
    savedUsd: 0,
  });
  return {
    totals: {
      calls: totals.calls,
      errors: totals.errors,
      tokens: tokensOf(totals),
      costUsd: round(totals.costUsd, 6),
      requests: [...groups.route.values()].reduce((sum, sums) => sum + sums.calls, 0),
      refused: [...groups.route.values()].reduce((sum, sums) => sum + sums.errors, 0),
    },
    hotspots,
    cacheSavings,
  };
}
