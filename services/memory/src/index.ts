export { loadConfig } from "./config.js";
export type { MemoryConfig } from "./config.js";
export { assembleContext, groupTurns } from "./context.js";
export { chunkText } from "./knowledge.js";
export { startMemory } from "./service.js";
export type { RunningMemory } from "./service.js";
export { lshBucket, nearbyBuckets } from "./lsh.js";
