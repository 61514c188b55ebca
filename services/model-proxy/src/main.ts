import { ConfigError } from "@agent-runtime/config";
import { createLogger, installShutdown, startOrExit, startTelemetry } from "@agent-runtime/telemetry";
import { loadConfig, type ModelProxyConfig } from "./config.js";
import { startModelProxy } from "./service.js";

let config: ModelProxyConfig;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  createLogger({ service: "model-proxy" }).fatal(error.message);
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: "model-proxy", level: config.logLevel });
const telemetry = await startTelemetry({ service: "model-proxy", logger });
// the model proxy uses no Postgres: only NATS is waited for
const proxy = await startOrExit(logger, { natsUrl: config.natsUrl }, () =>
  startModelProxy(config, { logger }),
);
installShutdown({
  logger,
  steps: [
    { name: "drain", run: () => proxy.stop() },
    { name: "telemetry", run: () => telemetry.shutdown() },
  ],
});
