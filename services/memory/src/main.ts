import { ConfigError } from "@agent-runtime/config";
import { createLogger, installShutdown, startOrExit, startTelemetry } from "@agent-runtime/telemetry";
import { loadConfig, type MemoryConfig } from "./config.js";
import { startMemory } from "./service.js";

let config: MemoryConfig;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  createLogger({ service: "memory" }).fatal(error.message);
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: "memory", level: config.logLevel });
const telemetry = await startTelemetry({ service: "memory", logger });
const service = await startOrExit(logger, config, () => startMemory(config, { logger }));
installShutdown({
  logger,
  steps: [
    { name: "drain", run: () => service.stop() },
    { name: "telemetry", run: () => telemetry.shutdown() },
  ],
});
