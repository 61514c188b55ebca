import { runService } from "@agent-runtime/service";
import { loadConfig } from "./config.js";
import { startToolExecutor } from "./service.js";

await runService({ name: "tool-executor", config: loadConfig, start: startToolExecutor });
