import { runService } from "@agent-runtime/service";
import { loadConfig } from "./config.js";
import { startMemory } from "./service.js";

await runService({ name: "memory", config: loadConfig, start: startMemory });
