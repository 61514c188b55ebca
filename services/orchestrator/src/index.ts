export type { OrchestratorConfig } from "./config.js";
export { loadConfig } from "./config.js";
export { checkInput, checkOutput } from "./guardrails.js";
export type { RunningOrchestrator } from "./service.js";
export { startOrchestrator } from "./service.js";
export { matchingAgents, renderEvent } from "./triggers.js";
