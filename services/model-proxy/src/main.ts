import { runService } from "@agent-runtime/service";
import { loadConfig } from "./config.js";
import { startModelProxy } from "./service.js";

await runService({
  name: "model-proxy",
  config: loadConfig,
  start: startModelProxy,
  // the model proxy uses no Postgres: only NATS is waited for
  waitFor: (config) => ({ natsUrl: config.natsUrl }),
});
