import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bus } from "@agent-runtime/bus";
import { createTestBus, uniquePrefix } from "@agent-runtime/bus/testing";
import { Endpoints, type ModelChatReply, type ModelChatRequest } from "@agent-runtime/contracts";
import { createLogger } from "@agent-runtime/telemetry";
import { stringify } from "yaml";
import { loadConfig } from "./config.js";
import { type RunningModelProxy, startModelProxy } from "./service.js";

export function writeConfigFile(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "model-proxy-"));
  const path = join(dir, "config.yaml");
  writeFileSync(path, stringify(config));
  return path;
}

export interface ProxyHarness {
  proxy: RunningModelProxy;
  client: Bus;
  env: NodeJS.ProcessEnv;
  chat(
    request: Omit<ModelChatRequest, "meta"> & { meta?: Partial<ModelChatRequest["meta"]> },
  ): Promise<ModelChatReply>;
  stop(): Promise<void>;
}

/** A model-proxy in this process, in its own NATS/Redis namespace, plus a client bus. */
export async function startProxyHarness(env: NodeJS.ProcessEnv): Promise<ProxyHarness> {
  const prefix = uniquePrefix("mp");
  const fullEnv = {
    NATS_PREFIX: prefix,
    REDIS_PREFIX: `${prefix}:`,
    OPS_PORT: "0",
    RETRY_BASE_MS: "20",
    RETRY_MAX_MS: "400",
    ...env,
  };
  const proxy = await startModelProxy(loadConfig(fullEnv), {
    logger: createLogger({ service: "model-proxy", level: process.env.TEST_LOG_LEVEL ?? "silent" }),
  });
  const client = await createTestBus({ prefix });
  let counter = 0;
  return {
    proxy,
    client,
    env: fullEnv,
    chat: (request) =>
      client.request(Endpoints.modelChat, {
        ...request,
        meta: {
          v: 1,
          tenant: "t1",
          requestId: `req-${Date.now()}-${counter++}`,
          deadline: Date.now() + 10_000,
          ...request.meta,
        },
      } as ModelChatRequest),
    stop: async () => {
      await client.close();
      await proxy.stop();
    },
  };
}
