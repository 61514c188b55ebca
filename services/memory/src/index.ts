export type { MemoryConfig } from "./config.js";
export { loadConfig } from "./config.js";
export type { RunningMemory } from "./service.js";
export { startMemory } from "./service.js";
export { messageTokens } from "./tokens.js";
export { encodeVector, signature } from "./vector-math.js";
