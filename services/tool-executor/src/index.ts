export { ExpressionError, evaluate } from "./builtins/calculator.js";
export type { ToolExecutorConfig } from "./config.js";
export { loadConfig } from "./config.js";
export { isForbiddenAddress, safeRequest } from "./safe-http.js";
export type { RunningToolExecutor } from "./service.js";
export { startToolExecutor } from "./service.js";
