export { evaluate } from "./builtins/calculator.js";
export type { ToolExecutorConfig } from "./config.js";
export { loadConfig } from "./config.js";
export type { RunningToolExecutor } from "./service.js";
export { startToolExecutor } from "./service.js";
