export type { IngressConfig } from "./config.js";
export { loadConfig } from "./config.js";
export { KeyStore } from "./keys.js";
export type { RunningIngress } from "./service.js";
export { startIngress } from "./service.js";
export { dashboardStats, RANGES, type StatsRange } from "./stats-query.js";
export {
  BUCKET_COUNT,
  migrateRollups,
  type RollupSample,
  SLICE,
  slicesOf,
  TIERS,
  writeRollups,
} from "./stats-rollups.js";
