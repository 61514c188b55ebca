import type { FastifyInstance, FastifyRequest } from "fastify";
import { DOCS_HTML, DOCS_SCRIPT } from "./docs-page.js";
import { openApiDocument } from "./openapi.js";

/** A Host header fit to name the server in the document (anything else: the listening address). */
const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;

function serverUrlOf(request: FastifyRequest, fallback: string): string {
  const host = request.headers.host;
  return typeof host === "string" && HOST.test(host) ? `${request.protocol}://${host}` : fallback;
}

/**
 * `GET /openapi.json` (the OpenAPI 3.1 document, its server the address it was asked at) and
 * `GET /docs` (a page that renders it, with its script at `/docs/app.js`). Neither needs a key.
 */
export function registerDocsRoutes(app: FastifyInstance, options: { fallbackUrl: () => string }): void {
  app.get("/openapi.json", async (request, reply) => {
    reply.header("cache-control", "no-cache");
    return openApiDocument({ serverUrl: serverUrlOf(request, options.fallbackUrl()) });
  });
  app.get("/docs", async (_request, reply) =>
    reply.header("cache-control", "no-cache").type("text/html; charset=utf-8").send(DOCS_HTML),
  );
  app.get("/docs/app.js", async (_request, reply) =>
    reply.header("cache-control", "no-cache").type("text/javascript; charset=utf-8").send(DOCS_SCRIPT),
  );
}
