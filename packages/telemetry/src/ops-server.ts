import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "./logger.js";
import { type OpsRoutesOptions, registerOpsRoutes } from "./ops-routes.js";

export interface OpsServerOptions extends Omit<OpsRoutesOptions, "metrics"> {
  metrics: NonNullable<OpsRoutesOptions["metrics"]>;
  /** 0 picks a free port; the real one is returned. */
  port: number;
  /** Default `0.0.0.0`, so probes from outside the container reach it. */
  host?: string;
  logger: Logger;
}

export interface OpsServer {
  app: FastifyInstance;
  port: number;
  close(): Promise<void>;
}

/**
 * A small HTTP server with only the ops routes (`/healthz`, `/readyz`, `/metrics`): the
 * whole HTTP surface of services without an API of their own, and ingress's metrics
 * port (kept off its public port).
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { logger } = options;
  const app = Fastify({ logger: false });
  app.setErrorHandler((error, request, reply) => {
    logger.error({ err: error, url: request.url }, "ops route failed");
    void reply.code(500).send({ error: { type: "internal", message: "internal error" } });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send({ error: { type: "not_found", message: `no route ${request.method} ${request.url}` } });
  });
  registerOpsRoutes(app, options);
  try {
    await app.listen({ port: options.port, host: options.host ?? "0.0.0.0" });
  } catch (error) {
    await app.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  logger.debug({ port }, "ops server listening");

  let closed: Promise<void> | undefined;
  return {
    app,
    port,
    close: () => {
      closed ??= app.close();
      return closed;
    },
  };
}
