import type { FastifyInstance } from "fastify";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";

/** Named dependency checks for `/readyz`; each resolves when its dependency answers. */
export type ReadinessChecks = Record<string, () => Promise<void>>;

export interface OpsRoutesOptions {
  /**
   * Served at `/metrics` when given. Leave it out on a public port: metrics belong on
   * an ops port that only the cluster reaches (see `startOpsServer`).
   */
  metrics?: Metrics;
  checks: ReadinessChecks;
  /** True once shutdown has begun: `/readyz` then answers 503 so load balancers stop sending work. */
  isDraining?: () => boolean;
  /** How long each check may take (default 1000 ms). */
  checkTimeoutMs?: number;
  /** When given, changes between ready and not ready are logged. */
  logger?: Logger;
}

export type ReadinessReport =
  | { status: "ready"; checks: Record<string, "ok"> }
  | { status: "not_ready"; checks: Record<string, string> };

const MAX_MESSAGE_LENGTH = 300;

function describeFailure(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error)) || "check failed";
  return message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH)}…` : message;
}

/** "ok", or the failure's message (never its stack). A hung check fails after `timeoutMs`. */
async function runCheck(check: () => Promise<void>, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return "ok";
  } catch (error) {
    return describeFailure(error);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every check in parallel, each bounded by `timeoutMs`. */
export async function checkReadiness(
  checks: ReadinessChecks,
  options: { timeoutMs?: number; draining?: boolean } = {},
): Promise<ReadinessReport> {
  const timeoutMs = options.timeoutMs ?? 1000;
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => [name, await runCheck(check, timeoutMs)] as const),
  );
  const results: Record<string, string> = Object.fromEntries(entries);
  if (options.draining) results.draining = "shutting down";
  const ready = !options.draining && entries.every(([, result]) => result === "ok");
  return ready
    ? { status: "ready", checks: results as Record<string, "ok"> }
    : { status: "not_ready", checks: results };
}

/**
 * `GET /healthz` (process alive), `GET /readyz` (every dependency answers), and with
 * `metrics` also `GET /metrics` (Prometheus text).
 */
export function registerOpsRoutes(app: FastifyInstance, options: OpsRoutesOptions): void {
  let wasReady: boolean | undefined;

  app.get("/healthz", async (_request, reply) => {
    reply.header("cache-control", "no-store");
    return { status: "ok" };
  });

  app.get("/readyz", async (_request, reply) => {
    const report = await checkReadiness(options.checks, {
      ...(options.checkTimeoutMs !== undefined ? { timeoutMs: options.checkTimeoutMs } : {}),
      draining: options.isDraining?.() ?? false,
    });
    const ready = report.status === "ready";
    if (options.logger && wasReady !== undefined && ready !== wasReady) {
      if (ready) options.logger.info("ready again");
      else options.logger.warn({ checks: report.checks }, "not ready");
    }
    wasReady = ready;
    reply.header("cache-control", "no-store");
    if (!ready) reply.code(503).header("retry-after", "5");
    return report;
  });

  const { metrics } = options;
  if (!metrics) return;
  app.get("/metrics", async (_request, reply) => {
    const body = await metrics.registry.metrics();
    reply.header("content-type", metrics.registry.contentType);
    return body;
  });
}
