import { runService } from "@agent-runtime/service";
import { loadConfig } from "./config.js";
import { startIngress } from "./service.js";

await runService({ name: "ingress", config: loadConfig, start: startIngress });
