import type { Bus } from "@agent-runtime/bus";
import type { AgentConfig } from "@agent-runtime/config";
import {
  type ChatMessage,
  Endpoints,
  type ModelChatReply,
  ModelStreamChunk,
  type RequestMeta,
  type RunRequest,
  type ToolSpec,
} from "@agent-runtime/contracts";
import type { EventPublisher } from "./run-events.js";

export interface ModelCall {
  request: RunRequest;
  agent: AgentConfig;
  messages: ChatMessage[];
  tools: ToolSpec[];
  /** Whether an offered tool has side effects (the model-proxy then never answers from its cache). */
  sideEffects: boolean;
  step: number;
  meta: RequestMeta;
  /**
   * `live` relays the model's deltas as `delta` events while it answers; `off` asks for a whole
   * answer (an agent with output checks holds its answer back until it passes them).
   */
  stream: "live" | "off";
  /** The run was taken over: this step's call may have been made before (see ModelChatRequest.resumed). */
  resumed?: boolean;
  /** Tool-call deltas are relayed only for these tools (the caller's own): the others run here. */
  clientToolNames: ReadonlySet<string>;
}

/** One `model.chat` call for a run step, with its deltas relayed in order when streaming. */
export async function callModel(
  bus: Bus,
  call: ModelCall,
  events: EventPublisher,
  signal: AbortSignal,
): Promise<ModelChatReply> {
  const { request, agent, step } = call;
  const streamSubject =
    call.stream === "live" && request.stream ? `run.${request.runId}.deltas.${step}` : undefined;
  // which tool each streamed call index is for: the name arrives in the index's first fragment
  const callNames = new Map<number, string>();
  // once output went out, a model call made again on another replica would send it twice
  let relayed = false;
  const subscription = streamSubject
    ? bus.subscribe(streamSubject, ModelStreamChunk, (chunk) => {
        const toolCalls = (chunk.toolCalls ?? []).filter((delta) => {
          if (delta.name) callNames.set(delta.index, delta.name);
          return call.clientToolNames.has(callNames.get(delta.index) ?? "");
        });
        if (!chunk.content && toolCalls.length === 0) return;
        relayed = true;
        events.emit({
          type: "delta",
          step,
          ...(chunk.content ? { content: chunk.content } : {}),
          ...(toolCalls.length > 0 ? { toolCalls } : {}),
        });
      })
    : undefined;
  try {
    // the subscription must reach the server before the first chunk is published
    if (subscription) await bus.nc.flush();
    return await bus.request(
      Endpoints.modelChat,
      {
        meta: call.meta,
        messages: call.messages,
        ...(call.tools.length > 0 ? { tools: call.tools } : {}),
        task: call.tools.length > 0 ? "act" : "answer",
        ...(request.model ? { model: request.model } : agent.model ? { model: agent.model } : {}),
        ...(agent.tier ? { tier: agent.tier } : {}),
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...(request.maxTokens !== undefined ? { maxTokens: request.maxTokens } : {}),
        ...(streamSubject ? { streamSubject } : {}),
        ...(call.sideEffects ? { toolsHaveSideEffects: true } : {}),
        ...(call.resumed ? { resumed: true } : {}),
      },
      { signal, beforeRetry: () => !relayed },
    );
  } finally {
    subscription?.unsubscribe();
  }
}
