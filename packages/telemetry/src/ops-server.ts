import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";

export type ReadinessChecks = Record<string, () => Promise<void>>;

export interface OpsRoutesOptions {
  metrics: Metrics;
  checks: ReadinessChecks;
  isDraining?: () => boolean;
  checkTimeoutMs?: number;
}

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
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}

/** `/healthz` (alive), `/readyz` (every dependency answers), `/metrics` (Prometheus text). */
export function registerOpsRoutes(app: FastifyInstance, options: OpsRoutesOptions): void {
  const timeoutMs = options.checkTimeoutMs ?? 1000;
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    const names = Object.keys(options.checks);
    const results = await Promise.all(names.map((name) => runCheck(options.checks[name]!, timeoutMs)));
    const checks = Object.fromEntries(names.map((name, index) => [name, results[index]]));
    const draining = options.isDraining?.() ?? false;
    if (draining) checks.draining = "shutting down";
    const ready = !draining && results.every((result) => result === "ok");
    if (!ready) {
      reply.code(503).header("retry-after", "5");
      return { status: "not_ready", checks };
    }
    return { status: "ready", checks };
  });
  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", options.metrics.registry.contentType);
    return options.metrics.registry.metrics();
  });
}

export interface OpsServer {
  app: FastifyInstance;
  port: number;
  close(): Promise<void>;
}

/** A small HTTP server with only the ops routes (for services without their own HTTP). */
export async function startOpsServer(
  options: OpsRoutesOptions & { port: number; host?: string; logger: Logger },
): Promise<OpsServer> {
  const app = Fastify({ logger: false });
  app.setErrorHandler((error, _request, reply) => {
    options.logger.error({ err: error }, "ops route failed");
    void reply.code(500).send({ error: { type: "internal", message: "internal error" } });
  });
  registerOpsRoutes(app, options);
  await app.listen({ port: options.port, host: options.host ?? "0.0.0.0" });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return { app, port, close: () => app.close() };
}
