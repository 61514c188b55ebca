import { runService } from "@agent-runtime/service";
import { loadConfig } from "./config.js";
import { startOrchestrator } from "./service.js";

await runService({ name: "orchestrator", config: loadConfig, start: startOrchestrator });
