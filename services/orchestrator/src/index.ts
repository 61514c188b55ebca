export type { OrchestratorConfig } from "./config.js";
export { loadConfig } from "./config.js";
export { PARTITION_MIGRATIONS, retentionStatements } from "./partitions.js";
export { MIGRATIONS as RUN_STORE_MIGRATIONS } from "./run-store.js";
export type { RunningOrchestrator } from "./service.js";
export { startOrchestrator } from "./service.js";
