import * as ingress from "@agent-runtime/ingress";
import * as memory from "@agent-runtime/memory";
import * as modelProxy from "@agent-runtime/model-proxy";
import * as orchestrator from "@agent-runtime/orchestrator";
import { createLogger, type Logger, type LoggerOptions } from "@agent-runtime/telemetry";
import * as toolExecutor from "@agent-runtime/tool-executor";
import { dropIsolation, type Isolation, isolatedEnv, newIsolation } from "./isolation.js";

export interface Stack {
  url: string;
  /** Ingress's ops port (`/metrics`, which the public port does not serve). */
  opsUrl: string;
  /** Every service's ops port started in this process, by service name. */
  opsUrls: Partial<Record<StackService, string>>;
  isolation: Isolation;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export interface StackOptions {
  openaiBaseUrl?: string;
  bootstrapApiKey: string;
  /** Extra environment (AGENT_CONFIG, limits, …). */
  env?: NodeJS.ProcessEnv;
  isolation?: Isolation;
  keep?: boolean;
  /** Services not to start in this process (e.g. started as processes by the test). */
  without?: Array<"memory" | "tool-executor" | "model-proxy" | "orchestrator">;
  /** Every service's log lines (JSON, from `level` up, `info` by default) go here instead. */
  logs?: { destination: NonNullable<LoggerOptions["destination"]>; level?: string };
}

export type StackService = "ingress" | "memory" | "tool-executor" | "model-proxy" | "orchestrator";

/** All five services in this process, isolated by NATS prefix, Postgres schema and Redis prefix. */
export async function startStack(options: StackOptions): Promise<Stack> {
  const isolation = options.isolation ?? newIsolation();
  const env: NodeJS.ProcessEnv = isolatedEnv(isolation, {
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "error",
    BOOTSTRAP_API_KEY: options.bootstrapApiKey,
    ...(options.openaiBaseUrl ? { OPENAI_BASE_URL: options.openaiBaseUrl, OPENAI_API_KEY: "sk-fake" } : {}),
    MODEL_FAST: "fake-fast",
    MODEL_STRONG: "fake-strong",
    MODEL_EMBED: "fake-embed",
    ...options.env,
  });
  const level = options.logs?.level ?? (options.logs ? "info" : (env.LOG_LEVEL ?? "error"));
  const logger = (service: string): Logger =>
    createLogger({
      service,
      level,
      ...(options.logs ? { destination: options.logs.destination, format: "json" as const } : {}),
    });
  const started: { stop(): Promise<void> }[] = [];
  const opsUrls: Partial<Record<StackService, string>> = {};
  const ops = <T extends { opsPort: number }>(service: StackService, running: T): T => {
    opsUrls[service] = `http://127.0.0.1:${running.opsPort}`;
    return running;
  };
  try {
    const skip = new Set(options.without ?? []);
    if (!skip.has("memory"))
      started.push(
        ops(
          "memory",
          await memory.startMemory(memory.loadConfig(env), {
            logger: logger("memory"),
          }),
        ),
      );
    if (!skip.has("tool-executor"))
      started.push(
        ops(
          "tool-executor",
          await toolExecutor.startToolExecutor(toolExecutor.loadConfig(env), {
            logger: logger("tool-executor"),
          }),
        ),
      );
    if (!skip.has("model-proxy"))
      started.push(
        ops(
          "model-proxy",
          await modelProxy.startModelProxy(modelProxy.loadConfig(env), {
            logger: logger("model-proxy"),
          }),
        ),
      );
    if (!skip.has("orchestrator"))
      started.push(
        ops(
          "orchestrator",
          await orchestrator.startOrchestrator(orchestrator.loadConfig(env), {
            logger: logger("orchestrator"),
          }),
        ),
      );
    const front = ops(
      "ingress",
      await ingress.startIngress(ingress.loadConfig(env), {
        logger: logger("ingress"),
      }),
    );
    started.push(front);
    return {
      url: front.url,
      opsUrl: `http://127.0.0.1:${front.opsPort}`,
      opsUrls,
      isolation,
      env,
      stop: async () => {
        for (const service of started.reverse()) await service.stop().catch(() => undefined);
        if (!options.keep) await dropIsolation(isolation).catch(() => undefined);
      },
    };
  } catch (error) {
    for (const service of started.reverse()) await service.stop().catch(() => undefined);
    throw error;
  }
}
