import { annotateRequestSpan, type Metrics, SpanAttribute } from "@agent-runtime/telemetry";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type pg from "pg";
import { RollupBuffer, writeRollupRows } from "./stats-rollups.js";

/** Routes that are the dashboard looking at itself or probes; kept out of the rollups. */
const UNCOUNTED = /^\/(dashboard|v1\/stats|healthz|readyz|metrics)(\/|$|\?)/;
/** Statuses that mean ingress refused work to protect itself (shed), by reason. */
const SHED_REASONS: Record<number, string> = { 429: "rate_limited", 503: "unavailable" };
const FLUSH_MS = 1000;
/** Combinations (route, status, tenant, agent, minute) held between writes at most. */
const MAX_WAITING = 50_000;

const tenants = new WeakMap<FastifyRequest, string>();

/** Remembers who a request came from once its key is known (for its rollup row and on its HTTP span). */
export function rememberTenant(request: FastifyRequest, tenant: string): void {
  tenants.set(request, tenant);
  annotateRequestSpan(request, { [SpanAttribute.tenant]: tenant });
}

export interface HttpStatsOptions {
  pool: pg.Pool;
  metrics: Metrics;
  /** Agents a request may name; anything else is recorded without an agent (bounded cardinality). */
  agents: Record<string, unknown>;
  /** The tenant of an API key header, for requests refused before a route looked at the key (413, 415, …). */
  identify(authorization: string | undefined): Promise<string | undefined>;
  flushMs?: number;
}

/**
 * Counts every answered HTTP request into the rollups (route, status, tenant, agent,
 * latency), refusals included: 401, 403, 413 and 429 are errors of the ingress service in
 * the dashboard's error rate, and 429/503 are also counted as shed. Also keeps the
 * `http_in_flight` gauge and `requests_shed_total`. Requests are summed in memory and
 * written once a second, in one statement for every tier.
 */
export function registerHttpStats(app: FastifyInstance, options: HttpStatsOptions): () => Promise<void> {
  const { metrics } = options;
  const inFlight = metrics.gauge("http_in_flight", "HTTP requests being answered");
  const shed = metrics.counter("requests_shed_total", "work refused to protect the service", ["reason"]);
  const waiting = new RollupBuffer();

  app.addHook("onRequest", async (_request, reply) => {
    inFlight.inc();
    reply.raw.once("close", () => inFlight.dec());
  });
  app.addHook("onResponse", async (request, reply) => {
    const status = reply.statusCode;
    const reason = SHED_REASONS[status];
    if (reason) shed.inc({ reason });
    if (UNCOUNTED.test(request.url) || waiting.size >= MAX_WAITING) return;
    let tenant = tenants.get(request);
    if (tenant === undefined && status >= 400)
      tenant = await options.identify(request.headers.authorization).catch(() => undefined);
    const body = request.body as { model?: unknown; agent?: unknown } | undefined;
    const named = typeof body?.model === "string" ? body.model : body?.agent;
    waiting.add({
      at: Date.now(),
      tenant: tenant ?? "-",
      service: "ingress",
      kind: "http",
      name: `${request.method} ${request.routeOptions.url ?? "unrouted"}`,
      agent: typeof named === "string" && Object.hasOwn(options.agents, named) ? named : "",
      code: String(status),
      latencyMs: reply.elapsedTime,
      error: status >= 400,
    });
  });

  const flush = async () => {
    await writeRollupRows(options.pool, waiting.take()).catch(() => undefined);
  };
  const timer = setInterval(() => void flush(), options.flushMs ?? FLUSH_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await flush();
  };
}
