import { ConfigError } from "@agent-runtime/config";
import { createLogger, installShutdown, startOrExit, startTelemetry } from "@agent-runtime/telemetry";
import { type IngressConfig, loadConfig } from "./config.js";
import { startIngress } from "./service.js";

let config: IngressConfig;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  createLogger({ service: "ingress" }).fatal(error.message);
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: "ingress", level: config.logLevel });
const telemetry = await startTelemetry({ service: "ingress", logger });
const service = await startOrExit(logger, config, () => startIngress(config, { logger }));
installShutdown({
  logger,
  steps: [
    { name: "drain", run: () => service.stop() },
    { name: "telemetry", run: () => telemetry.shutdown() },
  ],
});
