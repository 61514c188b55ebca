import { type Bus, interactiveReserve } from "@agent-runtime/bus";
import {
  Endpoints,
  QueueGroups,
  Subjects,
  type ToolBatchReply,
  type ToolExecReply,
  ToolRegistration,
  toolExecEndpoint,
} from "@agent-runtime/contracts";
import { failpoints, openServiceContext } from "@agent-runtime/service";
import { createLogger, type Logger } from "@agent-runtime/telemetry";
import { calculator } from "./builtins/calculator.js";
import { currentTime } from "./builtins/current-time.js";
import { createHttpGet } from "./builtins/http-get.js";
import { createMemorySearch } from "./builtins/memory-search.js";
import { createRemember } from "./builtins/remember.js";
import type { ToolExecutorConfig } from "./config.js";
import { ToolExecutor } from "./executor.js";
import { serveToolForget } from "./forget-records.js";
import { McpToolSource } from "./mcp-tools.js";
import { IdempotencyStore } from "./records.js";
import { ToolRegistry } from "./registry.js";
import { allowListOf } from "./safe-http.js";
import { ToolSlots } from "./tool-slots.js";
import { createWebhookTool } from "./webhooks.js";

export interface RunningToolExecutor {
  bus: Bus;
  executor: ToolExecutor;
  registry: ToolRegistry;
  opsPort: number;
  stop(): Promise<void>;
}

export async function startToolExecutor(
  config: ToolExecutorConfig,
  options: { logger?: Logger } = {},
): Promise<RunningToolExecutor> {
  const logger = options.logger ?? createLogger({ service: "tool-executor", level: config.logLevel });
  const context = await openServiceContext({
    name: "tool-executor",
    config,
    logger,
    streams: ["USAGE"],
    postgres: true,
    redis: true,
  });
  const { bus, pool, redis, metrics } = context;
  const allow = allowListOf(config.tools.allowPrivateNetworks);

  const registry = new ToolRegistry(config.tools);
  registry.addLocal(calculator, "builtin");
  registry.addLocal(currentTime, "builtin");
  registry.addLocal(createHttpGet(allow), "builtin");
  registry.addLocal(
    createMemorySearch(bus, (agent) => (agent ? config.agents[agent]?.memory.scope : undefined) ?? "user"),
    "builtin",
  );
  registry.addLocal(createRemember(bus), "builtin");
  for (const [name, webhook] of Object.entries(config.tools.webhooks)) {
    const { tool, parameters } = createWebhookTool(name, webhook, config.env, allow);
    registry.addLocal(tool, "webhook", parameters);
  }

  const idempotency = await IdempotencyStore.create(
    pool,
    config.idempotencyTtlSeconds,
    config.claimHeartbeatMs,
  );
  const executor = new ToolExecutor({
    bus,
    redis,
    redisPrefix: config.redisPrefix,
    idempotency,
    slots: new ToolSlots(redis, config.redisPrefix, config.interactiveReserve),
    metrics,
    logger,
    lookup: (name) => registry.get(name),
    allows: (name, context) => registry.allowed(name, context),
    failpoint: failpoints(config.failpoints),
  });

  // batch requests hold at most part of each endpoint's bound; the rest is interactive's
  const serveOptions = (subject: string) => ({
    queue: QueueGroups.toolExecutor,
    maxInFlight: config.maxInFlight,
    admit: interactiveReserve({
      maxInFlight: config.maxInFlight,
      interactiveShare: config.interactiveReserve,
      subject,
    }),
  });
  const serveTool = (name: string) => {
    const endpoint = toolExecEndpoint(name);
    bus.serve(
      endpoint,
      (request) =>
        executor.exec({
          meta: request.meta,
          ...(request.channel ? { channel: request.channel } : {}),
          ...(request.offered ? { offered: request.offered } : {}),
          callId: request.callId,
          name,
          arguments: request.arguments,
          ...(request.idempotencyKey ? { idempotencyKey: request.idempotencyKey } : {}),
          ...(request.timeoutMs ? { timeoutMs: request.timeoutMs } : {}),
        }),
      serveOptions(endpoint.subject),
    );
  };
  for (const name of registry.localNames()) serveTool(name);
  const mcp = startMcpSources(config, registry, serveTool, logger);
  await mcp.ready;
  // every call of a batch is let finish (each records its own outcome) before a failure of the
  // runtime around one of them fails the batch: its caller retries it, and the calls that finished
  // answer again from their idempotency records
  bus.serve(
    Endpoints.toolBatch,
    async (request): Promise<ToolBatchReply> => {
      const settled = await Promise.allSettled(
        request.calls.map((call) =>
          executor.exec({
            meta: request.meta,
            ...(request.channel ? { channel: request.channel } : {}),
            ...(request.offered ? { offered: request.offered } : {}),
            callId: call.callId,
            name: call.name,
            arguments: call.arguments,
            ...(call.idempotencyKey ? { idempotencyKey: call.idempotencyKey } : {}),
            ...(request.timeoutMs ? { timeoutMs: request.timeoutMs } : {}),
          }),
        ),
      );
      const failed = settled.find((outcome) => outcome.status === "rejected");
      if (failed) throw failed.reason;
      return {
        results: settled.map((outcome) => (outcome as PromiseFulfilledResult<ToolExecReply>).value),
      };
    },
    serveOptions(Endpoints.toolBatch.subject),
  );
  bus.serve(
    Endpoints.toolList,
    async (request) => ({ tools: registry.list(request) }),
    serveOptions(Endpoints.toolList.subject),
  );
  serveToolForget(bus, { pool, redis, prefix: config.redisPrefix }, logger);
  const cancellations = executor.runs.listen(bus);
  const registrations = bus.subscribe(Subjects.toolRegister, ToolRegistration, (registration) =>
    registry.register(registration),
  );

  const ops = await context.startOps();
  await context.announce([`tools ${registry.localNames().join(", ")}`], { tools: registry.localNames() });
  context.onStop(async () => {
    await mcp.close();
    registrations.unsubscribe();
    cancellations.unsubscribe();
    executor.stopWaiting();
    // what acted while the store was away gets a last chance to be recorded
    await idempotency.settle(SETTLE_RECORDS_MS);
  });
  return { bus, executor, registry, opsPort: ops.port, stop: () => context.stop() };
}

const MCP_RETRY_MAX_MS = 60_000;
/** At shutdown, how long records and releases still waiting for the store may take. */
const SETTLE_RECORDS_MS = 5000;

/**
 * Connects every configured MCP server and serves its tools like local ones. A server that cannot
 * be reached in its connect time does not hold the start: it is tried again in the background
 * (backing off to a minute) and its tools are offered once it answers.
 */
function startMcpSources(
  config: ToolExecutorConfig,
  registry: ToolRegistry,
  serveTool: (name: string) => void,
  logger: Logger,
): { ready: Promise<void>; close(): Promise<void> } {
  const sources: McpToolSource[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const attach = async (source: McpToolSource, delayMs: number): Promise<void> => {
    try {
      const tools = await source.tools();
      const added: string[] = [];
      for (const { definition, parameters } of tools) {
        if (registry.get(definition.name)) {
          if (registry.get(definition.name)?.descriptor.kind !== "mcp")
            logger.warn(
              { mcpServer: source.server, tool: definition.name },
              "MCP tool not offered: a tool of that name exists (set toolPrefix on the server)",
            );
          continue;
        }
        registry.addLocal(definition, "mcp", parameters);
        serveTool(definition.name);
        added.push(definition.name);
      }
      logger.info({ mcpServer: source.server, at: source.location, tools: added }, "MCP server connected");
    } catch (error) {
      if (closed) return;
      logger.warn(
        {
          mcpServer: source.server,
          at: source.location,
          err: error instanceof Error ? error.message : String(error),
          retryInMs: delayMs,
        },
        "MCP server not reachable; its tools are offered once it answers",
      );
      await source.close();
      const timer = setTimeout(() => {
        timers.delete(timer);
        void attach(source, Math.min(delayMs * 2, MCP_RETRY_MAX_MS));
      }, delayMs);
      timer.unref();
      timers.add(timer);
    }
  };
  for (const [name, server] of Object.entries(config.tools.mcpServers)) {
    sources.push(new McpToolSource(name, server, config.env, logger));
  }
  return {
    ready: Promise.all(sources.map((source) => attach(source, 1000))).then(() => undefined),
    close: async () => {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      await Promise.all(sources.map((source) => source.close()));
    },
  };
}
