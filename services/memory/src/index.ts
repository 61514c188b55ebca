export { chunkText } from "./chunking.js";
export type { MemoryConfig } from "./config.js";
export { loadConfig } from "./config.js";
export type { ContextShares } from "./context.js";
export { assembleContext, groupTurns } from "./context.js";
export type { RunningMemory } from "./service.js";
export { startMemory } from "./service.js";
export { countText, encodingFor, messageTokens } from "./tokens.js";
export { encodeVector, signature } from "./vector-math.js";
