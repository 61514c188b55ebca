import type { Bus } from "@agent-runtime/bus";
import type { AgentConfig } from "@agent-runtime/config";
import {
  type AssistantMessage,
  type ChatMessage,
  Endpoints,
  type RequestMeta,
  type RunRequest,
  type ToolBatchReply,
  toWireError,
} from "@agent-runtime/contracts";
import type { Logger } from "@agent-runtime/telemetry";
import type { LoopDeps, RunOptions } from "./agent-loop.js";
import { DELEGATE_TOOL, delegate } from "./delegation.js";
import type { EventPublisher } from "./run-events.js";

type ToolCalls = NonNullable<AssistantMessage["tool_calls"]>;
/** Tool calls with their place in the model's answer. */
type PlacedCalls = { call: ToolCalls[number]; position: number }[];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One model turn's tool calls through the executor, in parallel, each with the idempotency key
 * `<runId>:<step>:<position>` (the call's place in the model's answer, stable when the step's model
 * call is made again after a crash, unlike the model's call ids), so a resumed run gets the
 * recorded result instead of a second side effect. A call that another worker started before a crash is answered `conflict` while it is
 * still running: it is asked again until its recorded result is there, so it never runs twice.
 */
export async function runTools(
  bus: Bus,
  request: RunRequest,
  step: number,
  calls: PlacedCalls,
  meta: RequestMeta,
  signal: AbortSignal,
): Promise<ToolBatchReply> {
  const ask = (subset: PlacedCalls) =>
    bus.request(
      Endpoints.toolBatch,
      {
        meta,
        calls: subset.map(({ call, position }) => ({
          callId: call.id,
          name: call.function.name,
          arguments: call.function.arguments,
          idempotencyKey: `${request.runId}:${step}:${position}`,
        })),
      },
      { signal },
    );
  const batch = await ask(calls);
  for (let attempt = 0; attempt < 60; attempt++) {
    const pending = batch.results.flatMap((result, index) =>
      result.error?.code === "conflict" ? [index] : [],
    );
    if (pending.length === 0 || signal.aborted || Date.now() >= meta.deadline) break;
    await sleep(Math.min(1000, 100 * 2 ** Math.min(attempt, 4)));
    const again = await ask(pending.map((index) => calls[index]!));
    pending.forEach((index, position) => {
      batch.results[index] = again.results[position]!;
    });
  }
  return batch;
}

/**
 * The tool calls of one model turn: executor tools in one parallel batch, `delegate` calls as
 * child runs alongside; results come back in the order the model made the calls, each announced
 * as a `tool-result` event. Returns the tool messages and what the calls cost (child runs included).
 */
export async function runToolStep(context: {
  deps: LoopDeps;
  request: RunRequest;
  agent: AgentConfig;
  step: number;
  calls: ToolCalls;
  meta: RequestMeta;
  remainingBudgetUsd: number;
  events: EventPublisher;
  signal: AbortSignal;
  options: RunOptions;
}): Promise<{ toolMessages: ChatMessage[]; toolCost: number }> {
  const { deps, request, agent, step, calls, events } = context;
  events.emit({ type: "step-started", step, kind: "tools" });
  for (const call of calls) {
    events.emit({
      type: "tool-called",
      step,
      callId: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
    });
  }
  const placed = calls.map((call, position) => ({ call, position }));
  const delegated = placed.filter(
    ({ call }) => call.function.name === DELEGATE_TOOL && agent.delegates.length > 0,
  );
  const regular = placed.filter((entry) => !delegated.includes(entry));
  const [batch, children] = await Promise.all([
    regular.length > 0
      ? runTools(deps.bus, request, step, regular, context.meta, context.signal)
      : Promise.resolve({ results: [] }),
    Promise.all(
      delegated.map(({ call, position }) =>
        delegate(deps, request, agent, call, step, position, context.remainingBudgetUsd, context.options),
      ),
    ),
  ]);
  const position = (callId: string) => calls.findIndex((call) => call.id === callId);
  const results = [...batch.results, ...children].sort((a, b) => position(a.callId) - position(b.callId));
  const toolMessages: ChatMessage[] = [];
  let toolCost = 0;
  for (const result of results) {
    toolCost += result.costUsd;
    events.emit({
      type: "tool-result",
      step,
      callId: result.callId,
      name: result.name,
      status: result.status,
      content: result.content.slice(0, 2000),
      latencyMs: result.latencyMs,
      cached: result.cached,
    });
    toolMessages.push({ role: "tool", tool_call_id: result.callId, content: result.content });
  }
  return { toolMessages, toolCost };
}

/**
 * Stores the turn in the thread: the (checked) input, then each step's assistant and tool
 * messages, with ids `<runId>:<n>` so a repeated append is a no-op.
 */
export async function appendTurn(
  bus: Bus,
  logger: Logger,
  request: RunRequest,
  input: ChatMessage[],
  turn: ChatMessage[],
  meta: RequestMeta,
): Promise<void> {
  if (!request.threadId) return;
  const messages = [...input, ...turn];
  // messages keyed by run and position: appending again is a no-op, so a store that is down is
  // waited for (with backoff, within the run's deadline) like the run's own journal
  for (let attempt = 0; ; attempt++) {
    try {
      await bus.request(Endpoints.memoryAppend, {
        meta,
        threadId: request.threadId,
        agent: request.agent,
        ...(request.userId ? { userId: request.userId } : {}),
        messages: messages.map((message, index) => ({ id: `${request.runId}:${index}`, message })),
      });
      return;
    } catch (error) {
      const wire = toWireError(error);
      const wait = Math.min(2000, 50 * 2 ** attempt) * (0.5 + Math.random() / 2);
      if (!wire.retryable || Date.now() + wait >= meta.deadline) {
        // the answer still goes out; the turn is missing from the thread
        logger.error({ err: error, runId: request.runId }, "could not store the turn in memory");
        return;
      }
      await sleep(wait);
    }
  }
}
