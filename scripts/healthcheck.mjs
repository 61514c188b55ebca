#!/usr/bin/env node
/**
 * The container image's HEALTHCHECK: `GET /healthz` on the port of the service
 * that SERVICE names — ingress on PORT, every other service on OPS_PORT, each
 * with its service's default. Exits 0 on a 2xx answer within 2 s, 1 otherwise.
 * Needs nothing but Node (the slim base image has no curl or wget).
 */
const DEFAULT_PORTS = {
  ingress: 8080,
  orchestrator: 9101,
  "model-proxy": 9102,
  "tool-executor": 9103,
  memory: 9104,
};

const service = process.env.SERVICE ?? "ingress";
const port = (service === "ingress" ? process.env.PORT : process.env.OPS_PORT) || DEFAULT_PORTS[service];
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
