import { ConfigError } from "@agent-runtime/config";
import { createLogger, installShutdown, startOrExit, startTelemetry } from "@agent-runtime/telemetry";
import { loadConfig, type OrchestratorConfig } from "./config.js";
import { startOrchestrator } from "./service.js";

let config: OrchestratorConfig;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  createLogger({ service: "orchestrator" }).fatal(error.message);
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: "orchestrator", level: config.logLevel });
const telemetry = await startTelemetry({ service: "orchestrator", logger });
const service = await startOrExit(logger, config, () => startOrchestrator(config, { logger }));
installShutdown({
  logger,
  steps: [
    { name: "drain", run: () => service.stop() },
    { name: "telemetry", run: () => telemetry.shutdown() },
  ],
});
