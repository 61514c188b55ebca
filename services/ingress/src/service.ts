import { type Bus, connectBus } from "@agent-runtime/bus";

import { createPool, createRedis } from "@agent-runtime/stores";
import { createLogger, createMetrics, type Logger, registerOpsRoutes } from "@agent-runtime/telemetry";
import Fastify, { type FastifyInstance } from "fastify";
import { registerChatRoute } from "./chat-route.js";
import type { IngressConfig } from "./config.js";
import { DASHBOARD_HTML } from "./dashboard.js";
import { registerEventRoutes } from "./events-route.js";
import { handleError, sendError } from "./http-errors.js";
import { KeyStore, requireScope, type Scope } from "./keys.js";
import { openApiDocument } from "./openapi.js";
import { Quotas } from "./quotas.js";
import { RateLimiter } from "./rate-limits.js";
import type { RouteDeps } from "./route-deps.js";
import { RunGateway } from "./run-gateway.js";
import { registerRunRoutes } from "./runs-route.js";
import { startUsageAggregation, tenantStats } from "./usage-stats.js";

export interface RunningIngress {
  app: FastifyInstance;
  bus: Bus;
  keys: KeyStore;
  port: number;
  url: string;
  stop(): Promise<void>;
}

export async function startIngress(
  config: IngressConfig,
  options: { logger?: Logger } = {},
): Promise<RunningIngress> {
  const logger = options.logger ?? createLogger({ service: "ingress", level: config.logLevel });
  const bus = await connectBus({ name: "ingress", url: config.natsUrl, prefix: config.natsPrefix, logger });
  await bus.ensureStreams(["RUNS", "RUN_EVENTS", "EVENTS", "USAGE", "DEAD_LETTERS"]);
  const pool = await createPool({
    url: config.databaseUrl,
    schema: config.databaseSchema,
    applicationName: "ingress",
  });
  const keys = await KeyStore.open(pool, config.keyCacheMs);
  if (config.bootstrapApiKey)
    await keys.register(config.bootstrapApiKey, "default", ["chat", "runs", "events", "admin"], "bootstrap");
  const redis = createRedis(config.redisUrl, logger);
  const limiter = new RateLimiter(redis, config.redisPrefix);
  const runs = new RunGateway(bus, config.limits.queues);
  const quotas = new Quotas(redis, pool, config.redisPrefix);
  const metrics = createMetrics("ingress");
  const requests = metrics.counter("http_requests_total", "HTTP requests", ["route", "status"]);
  const latency = metrics.histogram("http_request_seconds", "HTTP latency", ["route"]);
  await startUsageAggregation(bus, pool);

  const tenantLimitCache = new Map<string, { at: number; limits: Record<string, number> }>();
  const deps: RouteDeps = {
    bus,
    runs,
    agents: config.agents,
    runTimeoutMs: config.runTimeoutMs,
    authenticate: async (request, scope: Scope) => {
      const key = await keys.authenticate(request.headers.authorization);
      requireScope(key, scope);
      return key;
    },
    limit: async (tenant, userId, options) => {
      let stored = tenantLimitCache.get(tenant);
      if (!stored || Date.now() - stored.at > 10_000) {
        stored = { at: Date.now(), limits: await keys.tenantLimits(tenant).catch(() => ({})) };
        tenantLimitCache.set(tenant, stored);
      }
      const limits = { ...config.limits.defaults, ...config.limits.tenants[tenant], ...stored.limits };
      await limiter.check(tenant, userId, limits, config.limits.global.requestsPerMinute);
      await quotas.checkSpend(tenant, limits);
      return options?.run ? quotas.takeRunSlot(tenant, limits) : () => undefined;
    },
  };

  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit: config.limits.maxBodyBytes,
    return503OnClosing: true,
  });
  app.setErrorHandler((error: Error, request, reply) => handleError(error, request, reply, logger));
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, {
      code: "not_found",
      message: `no route ${request.method} ${request.url.split("?")[0]}`,
      retryable: false,
    }),
  );
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unknown";
    requests.inc({ route, status: String(reply.statusCode) });
    latency.observe({ route }, reply.elapsedTime / 1000);
  });
  registerOpsRoutes(app, {
    metrics,
    isDraining: () => bus.isDraining,
    checks: {
      nats: () => bus.ping(),
      postgres: async () => {
        await pool.query("SELECT 1");
      },
    },
  });
  registerChatRoute(app, deps);
  registerRunRoutes(app, deps);
  registerEventRoutes(app, deps);
  app.get("/v1/models", async (request) => {
    const key = await deps.authenticate(request, "chat");
    const data = Object.entries(config.agents)
      .filter(([, agent]) => agent.tenants.length === 0 || agent.tenants.includes(key.tenant))
      .map(([id, agent]) => ({
        id,
        object: "model",
        created: 0,
        owned_by: "agent-runtime",
        description: agent.description,
      }));
    return { object: "list", data };
  });
  app.get("/v1/stats", async (request) => {
    const key = await deps.authenticate(request, "runs");
    const days = Math.min(365, Math.max(1, Number((request.query as { days?: string }).days ?? 7) || 7));
    return tenantStats(pool, key.tenant, days);
  });
  app.get("/openapi.json", async () => openApiDocument());
  app.get("/dashboard", async (_request, reply) =>
    reply.type("text/html; charset=utf-8").send(DASHBOARD_HTML),
  );

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  logger.info({ port, agents: Object.keys(config.agents) }, "ingress ready");
  return {
    app,
    bus,
    keys,
    port,
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      await app.close();
      await bus.drain();
      await pool.end();
      redis.disconnect();
    },
  };
}
