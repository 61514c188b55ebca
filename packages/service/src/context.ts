import { type Bus, connectBus, describeNats, type StreamName } from "@agent-runtime/bus";
import type { Connections } from "@agent-runtime/config";
import { createPool, createRedis, describePostgres, describeRedis } from "@agent-runtime/stores";
import {
  announceReady,
  createMetrics,
  type Logger,
  type Metrics,
  type OpsServer,
  type ReadinessChecks,
  startOpsServer,
} from "@agent-runtime/telemetry";
import type { Redis } from "ioredis";
import type pg from "pg";

/** What a service's configuration holds that the context reads (every service config has these). */
export type ServiceConnections = Pick<
  Connections,
  "natsUrl" | "natsReplicas" | "natsPrefix" | "databaseUrl" | "databaseSchema" | "redisUrl" | "redisPrefix"
> & { opsPort: number };

export interface ServiceContextOptions<P extends boolean, R extends boolean> {
  /** The service's name: NATS connection name, Postgres application name, metrics prefix. */
  name: string;
  config: ServiceConnections;
  logger: Logger;
  /** Open a Postgres pool on `DATABASE_URL` / `DATABASE_SCHEMA` (`poolSize` connections at most). */
  postgres: P;
  poolSize?: number | undefined;
  /** Open a Redis client on `REDIS_URL`. */
  redis: R;
  /** JetStream streams to create or update once the bus is up. */
  streams?: StreamName[];
}

export interface OpsOptions {
  /** Readiness checks beside the context's own (NATS, and Postgres when opened). */
  checks?: ReadinessChecks;
  /** Draining besides the bus's own (e.g. an HTTP server closing). */
  isDraining?: () => boolean;
  /** The address to listen on (default `0.0.0.0`). */
  host?: string;
}

/**
 * The connections a service runs on, opened in order (bus, Postgres, Redis, metrics) and stopped
 * in order by `stop`: first the service's own steps (`onStop`, in the order given: stop intake,
 * settle work), then the bus drains (subscriptions and consumers end, replies in flight go out),
 * then the ops server closes, the pool ends and Redis disconnects.
 */
export interface ServiceContext<P extends boolean = boolean, R extends boolean = boolean> {
  readonly name: string;
  readonly logger: Logger;
  readonly bus: Bus;
  readonly pool: P extends true ? pg.Pool : undefined;
  readonly redis: R extends true ? Redis : undefined;
  readonly metrics: Metrics;
  /** `/readyz`'s checks and draining test: NATS, and Postgres when opened. */
  readiness(options?: OpsOptions): { checks: ReadinessChecks; isDraining: () => boolean };
  /** The ops server (`/healthz`, `/readyz`, `/metrics`), once `startOps` has run. */
  readonly ops: OpsServer | undefined;
  /**
   * Starts the ops server on `OPS_PORT` with NATS (and Postgres) as readiness checks; these checks
   * and the draining test are `readiness` too, for a service that serves them on its own port.
   */
  startOps(options?: OpsOptions): Promise<OpsServer>;
  /** Adds a step run by `stop` before the bus drains; steps run in the order added. */
  onStop(step: () => Promise<void> | void): void;
  /**
   * Says the service is up in one line: what it reached (NATS, Postgres, Redis when opened), then
   * `parts`, then the ops port.
   */
  announce(parts?: readonly string[], fields?: Record<string, unknown>): Promise<void>;
  /** Stops everything in order (once; later calls return the same promise). */
  stop(): Promise<void>;
}

/** Opens the context's connections; when one fails, those already open are closed again. */
export async function openServiceContext<P extends boolean, R extends boolean>(
  options: ServiceContextOptions<P, R>,
): Promise<ServiceContext<P, R>> {
  const { name, config, logger } = options;
  const metrics = createMetrics(name);
  // requests any endpoint of this service turned away, as ingress counts its own
  const shed = metrics.counter("requests_shed_total", "work refused to protect the service", ["reason"]);
  const bus = await connectBus({
    name,
    url: config.natsUrl,
    replicas: config.natsReplicas,
    prefix: config.natsPrefix,
    logger,
    onRefused: (_subject, reason) => shed.inc({ reason }),
  });
  metrics.gauge(
    "endpoint_in_flight",
    "requests being answered, per endpoint this service serves",
    ["endpoint"],
    (gauge) => {
      gauge.reset();
      for (const endpoint of bus.servedEndpoints())
        gauge.inc({ endpoint: endpoint.subject }, endpoint.inFlight);
    },
  );
  let pool: pg.Pool | undefined;
  let redis: Redis | undefined;
  try {
    if (options.streams?.length) await bus.ensureStreams(options.streams);
    if (options.postgres)
      pool = await createPool({
        url: config.databaseUrl,
        schema: config.databaseSchema,
        applicationName: name,
        ...(options.poolSize !== undefined ? { max: options.poolSize } : {}),
      });
    if (options.redis) redis = createRedis(config.redisUrl, logger);
  } catch (error) {
    await bus.drain().catch(() => undefined);
    await pool?.end().catch(() => undefined);
    throw error;
  }
  const steps: (() => Promise<void> | void)[] = [];
  let ops: OpsServer | undefined;
  let stopping: Promise<void> | undefined;

  const stopAll = async () => {
    for (const step of steps) await step();
    await bus.drain();
    await ops?.close();
    await pool?.end();
    redis?.disconnect();
  };

  const readiness = (opsOptions: OpsOptions = {}) => {
    const checks: ReadinessChecks = { nats: () => bus.ping() };
    if (pool) {
      const opened = pool;
      checks.postgres = async () => {
        await opened.query("SELECT 1");
      };
    }
    return {
      checks: { ...checks, ...opsOptions.checks },
      isDraining: () => bus.isDraining || (opsOptions.isDraining?.() ?? false),
    };
  };

  return {
    name,
    logger,
    bus,
    pool: pool as ServiceContext<P, R>["pool"],
    redis: redis as ServiceContext<P, R>["redis"],
    metrics,
    get ops() {
      return ops;
    },
    readiness,
    async startOps(opsOptions: OpsOptions = {}) {
      ops = await startOpsServer({
        port: config.opsPort,
        metrics,
        logger,
        ...readiness(opsOptions),
        ...(opsOptions.host ? { host: opsOptions.host } : {}),
      });
      return ops;
    },
    onStop(step) {
      steps.push(step);
    },
    async announce(parts = [], fields = {}) {
      const reached = [describeNats(bus)];
      if (pool) reached.push(await describePostgres(pool, config.databaseUrl));
      if (redis) reached.push(await describeRedis(redis, config.redisUrl, config.redisPrefix));
      const opsPart = ops ? [`ops :${ops.port} (/healthz /readyz /metrics)`] : [];
      announceReady(logger, name, [...reached, ...parts, ...opsPart], {
        ...(ops ? { opsPort: ops.port } : {}),
        ...fields,
      });
    },
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };
}
