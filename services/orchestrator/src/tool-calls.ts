import type { Bus } from "@agent-runtime/bus";
import type { AgentConfig } from "@agent-runtime/config";
import {
  type AssistantMessage,
  type ChatMessage,
  Endpoints,
  type RequestMeta,
  type RunRequest,
  retryUntilDeadline,
  runChannel,
  type ToolBatchReply,
  toWireError,
} from "@agent-runtime/contracts";
import { metaAttributes, SpanAttribute, SpanKind, withSpan } from "@agent-runtime/telemetry";
import { DELEGATE_TOOL, delegate } from "./delegation.js";
import type { LoopDeps, RunOptions } from "./run-context.js";
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
 *
 * The batch carries the run's channel and its agent's tools: the executor refuses (`forbidden`, a
 * result the model reads) a call to any other tool or one a tool policy does not allow. A batch
 * the executor could not run because the runtime around the tools failed (its store, a service a
 * tool relies on) is a retryable error, never a tool result: it is asked again with backoff
 * within the run's deadline, then fails the run with that error.
 */
export async function runTools(
  bus: Bus,
  request: RunRequest,
  step: number,
  calls: PlacedCalls,
  meta: RequestMeta,
  signal: AbortSignal,
  offered?: readonly string[],
): Promise<ToolBatchReply> {
  const channel = runChannel(request);
  const askOnce = (subset: PlacedCalls) =>
    bus.request(
      Endpoints.toolBatch,
      {
        meta,
        ...(channel ? { channel } : {}),
        ...(offered ? { offered: [...offered] } : {}),
        calls: subset.map(({ call, position }) => ({
          callId: call.id,
          name: call.function.name,
          arguments: call.function.arguments,
          idempotencyKey: `${request.runId}:${step}:${position}`,
        })),
      },
      { signal },
    );
  const ask = (subset: PlacedCalls): Promise<ToolBatchReply> =>
    retryUntilDeadline(() => askOnce(subset), {
      deadline: meta.deadline,
      signal,
      baseMs: 100,
      maxMs: 2000,
      isPermanent: (error) => !toWireError(error).retryable,
      retryAfterMs: (error) => toWireError(error).retryAfterMs,
    });
  const toolNames = [...new Set(calls.map(({ call }) => call.function.name))].sort();
  const batch = await withSpan(`execute_tool ${toolNames.join(",")}`, () => ask(calls), {
    kind: SpanKind.CLIENT,
    attributes: {
      [SpanAttribute.operation]: "execute_tool",
      [SpanAttribute.toolName]: toolNames.join(","),
      [SpanAttribute.step]: step,
      ...metaAttributes({ meta }),
    },
  });
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
      ? runTools(deps.bus, request, step, regular, context.meta, context.signal, agent.tools)
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
