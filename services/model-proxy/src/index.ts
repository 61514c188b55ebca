export { loadConfig } from "./config.js";
export type { ModelProxyConfig } from "./config.js";
export { startModelProxy } from "./service.js";
export type { RunningModelProxy } from "./service.js";
export { estimateComplexity, pickVariant, routeRequest } from "./router.js";
export { costOf } from "./pricing.js";
