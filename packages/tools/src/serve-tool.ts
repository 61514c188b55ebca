import type { Bus, ServedEndpoint } from "@agent-runtime/bus";
import {
  formatZodError,
  parseToolArguments,
  RuntimeError,
  Subjects,
  ToolRegistration,
  toolExecEndpoint,
} from "@agent-runtime/contracts";

import { describeTool, type ToolDefinition } from "./define-tool.js";

/** Where the executor forwards calls to a tool hosted by another service. */
export function remoteToolSubject(name: string): string {
  return Subjects.toolRemote(name);
}

export interface ServedTool {
  stop(): Promise<void>;
}

/**
 * Hosts a tool from any service: serves `tool.remote.<name>` in a queue group
 * and announces it on `tool.register` every `announceEverySeconds`, so the
 * tool-executor lists it and routes calls to it with its own policies.
 */
export function serveTool(
  bus: Bus,
  tool: ToolDefinition,
  options: { queue?: string; maxInFlight?: number; announceEverySeconds?: number } = {},
): ServedTool {
  const endpoint = toolExecEndpoint(tool.name);
  const served: ServedEndpoint = bus.serve(
    endpoint,
    async (request, context) => {
      const started = performance.now();
      const read = parseToolArguments(request.arguments);
      if (!read.ok) throw new RuntimeError("validation", `arguments are ${read.reason}`);
      const parsed = tool.input.safeParse(read.value);
      if (!parsed.success)
        throw new RuntimeError("validation", `invalid arguments: ${formatZodError(parsed.error)}`);
      const output = await tool.handler(parsed.data, {
        tenant: request.meta.tenant,
        ...(request.meta.userId ? { userId: request.meta.userId } : {}),
        ...(request.meta.runId ? { runId: request.meta.runId } : {}),
        callId: request.callId,
        ...(request.idempotencyKey ? { idempotencyKey: request.idempotencyKey } : {}),
        signal: context.signal,
        deadline: context.deadline,
      });
      // the hosting service checks its own results against the tool's output schema
      const checked = tool.output?.safeParse(output);
      if (checked && !checked.success) {
        return {
          callId: request.callId,
          name: tool.name,
          status: "invalid_output" as const,
          content: `error: ${tool.name} returned an invalid result: ${formatZodError(checked.error)}`,
          latencyMs: performance.now() - started,
        };
      }
      return {
        callId: request.callId,
        name: tool.name,
        status: "ok" as const,
        output,
        content: typeof output === "string" ? output : JSON.stringify(output),
        latencyMs: performance.now() - started,
      };
    },
    {
      queue: options.queue ?? `tool-${tool.name}`,
      maxInFlight: options.maxInFlight ?? tool.options.maxConcurrency,
      subject: remoteToolSubject(tool.name),
    },
  );
  const ttlSeconds = Math.max(5, (options.announceEverySeconds ?? 10) * 3);
  const announce = () =>
    bus.publish(Subjects.toolRegister, ToolRegistration, {
      descriptor: describeTool(tool, "nats"),
      ttlSeconds,
    });
  announce();
  const timer = setInterval(announce, (options.announceEverySeconds ?? 10) * 1000);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await served.stop();
    },
  };
}
