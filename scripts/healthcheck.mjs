#!/usr/bin/env node
/**
 * The container image's HEALTHCHECK: `GET /healthz` on the port of the service
 * that SERVICE names — ingress on PORT (8080), every other service on its
 * `<SERVICE>_OPS_PORT` or OPS_PORT (the image sets OPS_PORT=9100). Exits 0 on a 2xx answer within 2 s, 1 otherwise.
 * Needs nothing but Node (the slim base image has no curl or wget).
 */
const service = process.env.SERVICE ?? "ingress";
const own = `${service.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_OPS_PORT`;
const port = service === "ingress" ? process.env.PORT || "8080" : process.env[own] || process.env.OPS_PORT;
if (!port || port === "0") {
  process.stderr.write(`healthcheck: no fixed port for SERVICE=${service}\n`);
  process.exit(1);
}

try {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  process.stderr.write(`healthcheck: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
