export { loadConfig } from "./config.js";
export type { OrchestratorConfig } from "./config.js";
export { checkInput, checkOutput } from "./guardrails.js";
export { startOrchestrator } from "./service.js";
export type { RunningOrchestrator } from "./service.js";
export { matchingAgents, renderEvent } from "./triggers.js";
