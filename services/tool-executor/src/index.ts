export { evaluate, ExpressionError } from "./builtins/calculator.js";
export { loadConfig } from "./config.js";
export type { ToolExecutorConfig } from "./config.js";
export { isForbiddenAddress, safeRequest } from "./safe-http.js";
export { startToolExecutor } from "./service.js";
export type { RunningToolExecutor } from "./service.js";
