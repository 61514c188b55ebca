import type { Bus } from "@agent-runtime/bus";

import { isListedAgent, TenantLimits } from "@agent-runtime/config";
import { openServiceContext } from "@agent-runtime/service";
import { createLogger, type Logger, registerHttpTracing, registerOpsRoutes } from "@agent-runtime/telemetry";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { registerAdminRoutes } from "./admin-route.js";
import { registerChatRoute } from "./chat-route.js";
import type { IngressConfig } from "./config.js";
import { registerDashboardRoutes } from "./dashboard-routes.js";
import { registerDocsRoutes } from "./docs-route.js";
import { registerEmbeddingsRoute } from "./embeddings-route.js";
import { registerEventRoutes } from "./events-route.js";
import { registerForgetRoutes } from "./forget-route.js";
import { anonymizeUserUsage } from "./forget-usage.js";
import { handleError, sendError } from "./http-errors.js";
import { registerHttpStats, rememberTenant } from "./http-stats.js";
import { KeyStore, requireScope, type Scope } from "./keys.js";
import { registerMemoryRoutes } from "./memories-route.js";
import { ModelCatalog, registerModelRoutes } from "./model-catalog.js";
import { startQueueSampler } from "./queue-sampler.js";
import { QuotaReached, Quotas } from "./quotas.js";
import { Limiter, type Release } from "./rate-limits.js";
import {
  answerUnrouted,
  clientErrorHandler,
  registerRequestGuards,
  routerErrorHandler,
} from "./request-guards.js";
import { registerResponseHeaders, setTokenHeaders } from "./response-headers.js";
import type { RouteDeps } from "./route-deps.js";
import { routeStats } from "./route-stats.js";
import { RunGateway } from "./run-gateway.js";
import { registerRunRoutes } from "./runs-route.js";
import { SseStreams } from "./sse.js";
import { startUsageAggregation, usageStats } from "./usage-stats.js";

export interface RunningIngress {
  app: FastifyInstance;
  bus: Bus;
  keys: KeyStore;
  port: number;
  /** `/metrics`, `/healthz`, `/readyz` for the cluster (OPS_PORT). */
  opsPort: number;
  url: string;
  /** Every route the public port serves, as `METHOD /path` (HEAD routes of GETs left out). */
  routes: string[];
  stop(): Promise<void>;
}

export async function startIngress(
  config: IngressConfig,
  options: { logger?: Logger } = {},
): Promise<RunningIngress> {
  const logger = options.logger ?? createLogger({ service: "ingress", level: config.logLevel });
  const context = await openServiceContext({
    name: "ingress",
    config,
    logger,
    streams: ["RUNS", "RUN_EVENTS", "EVENTS", "USAGE", "DEAD_LETTERS"],
    postgres: true,
    redis: true,
  });
  const { bus, pool, redis, metrics } = context;
  const keys = await KeyStore.open(pool, config.keyCacheMs);
  let bootstrap = "no BOOTSTRAP_API_KEY (make keys with `pnpm admin keys create`)";
  if (config.bootstrapApiKey) {
    const registered = await keys.register(
      config.bootstrapApiKey,
      "default",
      ["chat", "runs", "events", "admin"],
      "bootstrap",
    );
    if (registered === "revoked")
      logger.warn("BOOTSTRAP_API_KEY was revoked with the admin CLI and stays revoked; unset it");
    bootstrap =
      registered === "revoked"
        ? "BOOTSTRAP_API_KEY revoked (not usable)"
        : `BOOTSTRAP_API_KEY registered for tenant default (${registered === "created" ? "new" : "already known"})`;
  }
  const limiter = new Limiter(redis, config.redisPrefix);
  const runs = new RunGateway(bus, config.limits.queues);
  const quotas = new Quotas(pool);
  const sse = new SseStreams();
  const requests = metrics.counter("http_requests_total", "HTTP requests", ["route", "status"]);
  const latency = metrics.histogram("http_request_seconds", "HTTP latency", ["route"]);
  const stopUsageAggregation = await startUsageAggregation(bus, pool);
  const stopQueueSampler = startQueueSampler(bus, pool, metrics);

  // limits stored for a tenant (admin CLI), re-read every 10 s; requests that find them stale share one read
  const tenantLimitCache = new Map<string, { at: number; limits: Promise<TenantLimits> }>();
  const storedLimits = (tenant: string): Promise<TenantLimits> => {
    const cached = tenantLimitCache.get(tenant);
    if (cached && Date.now() - cached.at < 10_000) return cached.limits;
    const limits = keys
      .tenantLimits(tenant)
      .then((stored) => TenantLimits.partial().catch({}).parse(stored))
      .catch(() => cached?.limits ?? {});
    tenantLimitCache.set(tenant, { at: Date.now(), limits });
    if (tenantLimitCache.size > 100_000) tenantLimitCache.delete(tenantLimitCache.keys().next().value!);
    return limits;
  };
  const deps: RouteDeps = {
    bus,
    runs,
    sse,
    agents: config.agents,
    runTimeoutMs: config.runTimeoutMs,
    authenticate: async (request, scope: Scope) => {
      const key = await keys.authenticate(request.headers.authorization);
      rememberTenant(request, key.tenant);
      requireScope(key, scope);
      return key;
    },
    limit: async (tenant, userId, options) => {
      const limits: TenantLimits = {
        ...config.limits.defaults,
        ...config.limits.tenants[tenant],
        ...(await storedLimits(tenant)),
      };
      // spend first: a request refused for its quota does not use up the request rate
      const tokens = await quotas.checkSpend(tenant, userId, limits, config.limits.global);
      const release = await limiter.admit({
        tenant,
        userId,
        limits,
        global: config.limits.global,
        ...(options?.runLeaseMs ? { runLeaseMs: options.runLeaseMs } : {}),
      });
      if (!tokens) return release;
      const withTokens: Release = () => release();
      if (release.rate) withTokens.rate = release.rate;
      withTokens.tokens = tokens;
      return withTokens;
    },
    forgetUsage: (tenant, userId) => anonymizeUserUsage(pool, tenant, userId),
  };

  const app: FastifyInstance = Fastify({
    logger: false,
    // request size and depth limits hold on every route: the body here, its nesting in the guards
    bodyLimit: config.limits.maxBodyBytes,
    // requests that arrive while draining get our own 503 (with Retry-After) from the hook below
    return503OnClosing: false,
    // requests Node or the router refuse (headers too large, malformed URL) get the documented body too
    clientErrorHandler,
    frameworkErrors: routerErrorHandler(logger),
  });
  const routes: string[] = [];
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) if (method !== "HEAD") routes.push(`${method} ${route.url}`);
  });
  registerHttpTracing(app);
  // JSON only: a text or form body is a 415, not a string handed to the routes
  app.removeContentTypeParser("text/plain");
  registerResponseHeaders(app, { corsOrigins: config.corsOrigins });
  const stopHttpStats = registerHttpStats(app, {
    pool,
    metrics,
    agents: config.agents,
    identify: async (authorization) => (await keys.authenticate(authorization)).tenant,
  });
  const guards = registerRequestGuards(app);
  const unrouted = (request: FastifyRequest, reply: FastifyReply) => answerUnrouted(guards, request, reply);
  app.setErrorHandler((error: Error, request, reply) => {
    // a 429 for a spend quota still tells where the tightest token quota stands
    if (error instanceof QuotaReached) setTokenHeaders(reply, error.tokens);
    return handleError(error, request, reply, logger, unrouted);
  });
  app.setNotFoundHandler(unrouted);
  let closing = false;
  app.addHook("onRequest", async (_request, reply) => {
    if (!closing) return;
    reply.header("connection", "close");
    return sendError(reply, {
      code: "unavailable",
      message: "this ingress replica is shutting down; retry",
      retryable: true,
      retryAfterMs: 1000,
    });
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unknown";
    requests.inc({ route, status: String(reply.statusCode) });
    latency.observe({ route }, reply.elapsedTime / 1000);
  });
  // probes may use the public port; metrics only the ops port
  registerOpsRoutes(app, context.readiness({ isDraining: () => closing }));
  const ops = await context.startOps({ isDraining: () => closing, host: config.host });
  const catalog = new ModelCatalog(bus, config.agents, config.defaultAgent);
  registerChatRoute(app, deps, catalog);
  registerRunRoutes(app, deps);
  registerEventRoutes(app, deps);
  registerMemoryRoutes(app, deps);
  registerForgetRoutes(app, deps);
  registerAdminRoutes(app, deps, { keys, pool });
  registerModelRoutes(app, deps, catalog);
  registerEmbeddingsRoute(app, deps, catalog);
  app.get("/v1/stats", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const query = request.query as { days?: string; tenant?: string };
    const days = Math.min(365, Math.max(1, Number(query.days ?? 7) || 7));
    // an admin key may look at another tenant, or at every tenant with tenant=*
    let tenant: string | undefined = key.tenant;
    if (typeof query.tenant === "string" && query.tenant !== key.tenant) {
      requireScope(key, "admin");
      tenant = query.tenant === "*" ? undefined : query.tenant;
    }
    const [usage, byRoute] = await Promise.all([
      usageStats(pool, tenant, days),
      routeStats(pool, tenant, days),
    ]);
    return { ...usage, ...byRoute };
  });
  let publicUrl = `http://127.0.0.1:${config.port}`;
  registerDocsRoutes(app, { fallbackUrl: () => publicUrl });
  registerDashboardRoutes(app, deps, pool);

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await context.stop();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const shown = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const base = `http://${shown}:${port}`;
  publicUrl = base;
  await context.announce(
    [
      `API ${base}/v1`,
      `dashboard ${base}/dashboard`,
      `API docs ${base}/docs`,
      `OpenAPI ${base}/openapi.json`,
      `metrics http://${shown}:${ops.port}/metrics`,
      bootstrap,
    ],
    { port, agents: Object.keys(config.agents).filter(isListedAgent) },
  );
  // resumable event streams end first (clients resume elsewhere with Last-Event-ID); chat answers finish
  context.onStop(async () => {
    closing = true;
    sse.endAll();
    await app.close();
    stopUsageAggregation();
    stopQueueSampler();
    await stopHttpStats();
  });
  return {
    app,
    bus,
    keys,
    port,
    opsPort: ops.port,
    url: `http://127.0.0.1:${port}`,
    routes,
    stop: () => context.stop(),
  };
}
