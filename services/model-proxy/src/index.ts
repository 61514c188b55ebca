export type { ModelProxyConfig } from "./config.js";
export { loadConfig } from "./config.js";
export { providerFetch } from "./provider-http.js";
export { pickVariant } from "./router.js";
export type { RunningModelProxy } from "./service.js";
export { startModelProxy } from "./service.js";
