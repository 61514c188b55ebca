export { loadConfig } from "./config.js";
export type { IngressConfig } from "./config.js";
export { KeyStore, hashKey } from "./keys.js";
export { openApiDocument } from "./openapi.js";
export { startIngress } from "./service.js";
export type { RunningIngress } from "./service.js";
