import { ConfigError } from "@agent-runtime/config";
import { createLogger, installShutdown, startOrExit, startTelemetry } from "@agent-runtime/telemetry";
import { loadConfig, type ToolExecutorConfig } from "./config.js";
import { startToolExecutor } from "./service.js";

let config: ToolExecutorConfig;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  createLogger({ service: "tool-executor" }).fatal(error.message);
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: "tool-executor", level: config.logLevel });
const telemetry = await startTelemetry({ service: "tool-executor", logger });
const service = await startOrExit(logger, config, () => startToolExecutor(config, { logger }));
installShutdown({
  logger,
  steps: [
    { name: "drain", run: () => service.stop() },
    { name: "telemetry", run: () => telemetry.shutdown() },
  ],
});
