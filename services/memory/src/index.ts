export type { MemoryConfig } from "./config.js";
export { loadConfig } from "./config.js";
export { assembleContext, groupTurns } from "./context.js";
export { chunkText } from "./knowledge.js";
export { lshBucket, nearbyBuckets } from "./lsh.js";
export type { RunningMemory } from "./service.js";
export { startMemory } from "./service.js";
