import type { Bus } from "@agent-runtime/bus";
import type { AgentConfig } from "@agent-runtime/config";
import {
  type AssistantMessage,
  type ChatMessage,
  Endpoints,
  type ModelChatReply,
  type ModelOptions,
  ModelStreamChunk,
  type RequestMeta,
  type ResponseFormat,
  type RunRequest,
  RuntimeError,
  Subjects,
  type ToolCallDelta,
  type ToolSpec,
  textOf,
} from "@agent-runtime/contracts";
import {
  annotateSpan,
  metaAttributes,
  SpanAttribute,
  type SpanAttributeValues,
  SpanKind,
  withSpan,
} from "@agent-runtime/telemetry";
import { z } from "zod";
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

/** Between the text of a step that went on to call tools and the text after it, in a live stream. */
export const STEP_SEPARATOR = "\n\n";

/** Whether a model's answer is a step of server tools (not the run's answer): it calls none of the client's. */
export function callsServerTools(message: AssistantMessage, clientToolNames: ReadonlySet<string>): boolean {
  const calls = message.tool_calls ?? [];
  return calls.length > 0 && !calls.some((call) => clientToolNames.has(call.function.name));
}

/**
 * Relays one step's model output as `delta` events: its text with offsets (so a listener that
 * already has a part takes only the rest), and only the client's own tool calls (numbered among
 * themselves). Chunks are relayed while they come in order from the first one; once one is missing
 * (the call was made by another worker before a take-over), the rest of the text follows with the
 * reply. A step that goes on to call server tools ends its text with a separator, so everything the
 * client is streamed is the run's output.
 */
class StepRelay {
  private nextIndex = 0;
  private inOrder = true;
  private text = "";
  /** Tool-call index of the provider → the tool's name, and the client's call number. */
  private readonly callNames = new Map<number, string>();
  private readonly clientIndex = new Map<number, number>();
  relayed = false;

  constructor(
    private readonly events: EventPublisher,
    private readonly step: number,
    private readonly clientToolNames: ReadonlySet<string>,
  ) {}

  chunk(chunk: ModelStreamChunk): void {
    if (!this.inOrder || chunk.index !== this.nextIndex) {
      this.inOrder = false;
      return;
    }
    this.nextIndex++;
    const toolCalls: ToolCallDelta[] = [];
    for (const delta of chunk.toolCalls ?? []) {
      if (delta.name) this.callNames.set(delta.index, delta.name);
      if (!this.clientToolNames.has(this.callNames.get(delta.index) ?? "")) continue;
      let index = this.clientIndex.get(delta.index);
      if (index === undefined) {
        index = this.clientIndex.size;
        this.clientIndex.set(delta.index, index);
      }
      toolCalls.push({ ...delta, index });
    }
    if (!chunk.content && toolCalls.length === 0) return;
    this.relayed = true;
    this.events.emit({
      type: "delta",
      step: this.step,
      ...(chunk.content ? { content: chunk.content, offset: this.text.length } : {}),
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
    });
    this.text += chunk.content ?? "";
  }

  /** The reply is in: the text not relayed yet, then the separator of a step that calls server tools. */
  complete(message: AssistantMessage): void {
    this.inOrder = false;
    const text = textOf(message.content);
    if (text.length > this.text.length && text.startsWith(this.text)) {
      this.send(text.slice(this.text.length));
    }
    if (text.length > 0 && callsServerTools(message, this.clientToolNames)) this.send(STEP_SEPARATOR);
  }

  private send(content: string): void {
    this.relayed = true;
    this.events.emit({ type: "delta", step: this.step, content, offset: this.text.length });
    this.text += content;
  }
}

/**
 * The client's model options as one step may use them: a forcing `toolChoice` (`required`, or a
 * named tool that is on offer) holds for the run's first model step only, so a run whose first
 * step called its own tools can still answer; `tool_choice` and `parallel_tool_calls` go only with
 * tools.
 */
export function stepModelOptions(
  request: RunRequest,
  tools: readonly ToolSpec[],
  step: number,
): ModelOptions {
  const { toolChoice, parallelToolCalls, ...rest } = request.modelOptions ?? {};
  if (tools.length === 0) return rest;
  const options: ModelOptions = {
    ...rest,
    ...(parallelToolCalls === undefined ? {} : { parallelToolCalls }),
  };
  if (toolChoice === "auto" || toolChoice === "none") options.toolChoice = toolChoice;
  else if (toolChoice && step === 0) {
    const offered =
      toolChoice === "required" || tools.some((tool) => tool.function.name === toolChoice.function.name);
    if (offered) options.toolChoice = toolChoice;
  }
  return options;
}

const schemaCache = new WeakMap<object, z.ZodType | null>();

/** The zod form of a strict `json_schema` response format (null: a schema zod cannot express). */
function responseSchema(format: Extract<ResponseFormat, { type: "json_schema" }>): z.ZodType | null {
  const cached = schemaCache.get(format);
  if (cached !== undefined) return cached;
  let schema: z.ZodType | null = null;
  try {
    schema = z.fromJSONSchema((format.json_schema.schema ?? {}) as Parameters<typeof z.fromJSONSchema>[0]);
  } catch {
    schema = null;
  }
  schemaCache.set(format, schema);
  return schema;
}

/**
 * Checks an answer against the client's `response_format` before it is the run's answer: JSON for
 * `json_object`, and for a strict `json_schema` a value of that schema. Throws `upstream` naming
 * what is wrong, so the client never receives output its parser would reject.
 */
export function checkResponseFormat(message: AssistantMessage, format: ResponseFormat | undefined): void {
  if (!format || format.type === "text" || (message.tool_calls?.length ?? 0) > 0) return;
  const text = textOf(message.content);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new RuntimeError("upstream", `the model's answer is not the JSON that response_format asks for`, {
      retryable: false,
      details: { responseFormat: format.type },
    });
  }
  if (format.type !== "json_schema" || format.json_schema.strict !== true) return;
  const parsed = responseSchema(format)?.safeParse(value);
  if (parsed && !parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`);
    throw new RuntimeError(
      "upstream",
      `the model's answer does not match the response_format schema "${format.json_schema.name}": ${problems.join("; ")}`,
      { retryable: false, details: { responseFormat: "json_schema", problems } },
    );
  }
}

/** One `model.chat` call for a run step in a CLIENT span (GenAI attributes), with its deltas relayed in order when streaming. */
export function callModel(
  bus: Bus,
  call: ModelCall,
  events: EventPublisher,
  signal: AbortSignal,
): Promise<ModelChatReply> {
  const requested = call.request.model ?? call.agent.model;
  return withSpan(
    requested ? `chat ${requested}` : "chat",
    async (span) => {
      const reply = await callModelOnce(bus, call, events, signal);
      annotateSpan(modelReplyAttributes(reply), span);
      return reply;
    },
    {
      kind: SpanKind.CLIENT,
      attributes: {
        [SpanAttribute.operation]: "chat",
        [SpanAttribute.step]: call.step,
        ...metaAttributes(call),
        ...(requested ? { [SpanAttribute.requestModel]: requested } : {}),
      },
    },
  );
}

/** What a model reply says about the call, as GenAI span attributes. */
export function modelReplyAttributes(reply: ModelChatReply): SpanAttributeValues {
  return {
    [SpanAttribute.responseModel]: reply.model,
    [SpanAttribute.provider]: reply.provider,
    [SpanAttribute.inputTokens]: reply.usage.promptTokens,
    [SpanAttribute.outputTokens]: reply.usage.completionTokens,
    [SpanAttribute.costUsd]: reply.costUsd,
    [SpanAttribute.cached]: reply.cached,
  };
}

async function callModelOnce(
  bus: Bus,
  call: ModelCall,
  events: EventPublisher,
  signal: AbortSignal,
): Promise<ModelChatReply> {
  const { request, agent, step } = call;
  const options = stepModelOptions(request, call.tools, step);
  // with tool_choice none no tool call is the answer, so none is relayed
  const relayedTools = options.toolChoice === "none" ? new Set<string>() : call.clientToolNames;
  const streamSubject =
    call.stream === "live" && request.stream ? Subjects.runDeltas(request.runId, step) : undefined;
  const relay = streamSubject ? new StepRelay(events, step, relayedTools) : undefined;
  const subscription = relay
    ? bus.subscribe(streamSubject!, ModelStreamChunk, (chunk) => relay.chunk(chunk))
    : undefined;
  try {
    // the subscription must reach the server before the first chunk is published
    if (subscription)
      await bus.flush().catch((cause: unknown) => {
        // the connection dropped (its NATS node lost): a retryable failure, not an internal error
        throw new RuntimeError("unavailable", "NATS connection lost before the model call", { cause });
      });
    let reply = await bus.request(
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
        ...(request.deepAnalysis ? { deepAnalysis: true } : {}),
        ...options,
        ...(streamSubject ? { streamSubject } : {}),
        // said either way, so the proxy may answer an agent with read-only tools from its cache (a
        // delegate's child run may act on the world: counted as a side effect)
        ...(call.tools.length > 0
          ? { toolsHaveSideEffects: call.sideEffects || agent.delegates.length > 0 }
          : {}),
        ...(call.resumed ? { resumed: true } : {}),
      },
      // once output went out, a model call made again on another replica would send it again
      { signal, beforeRetry: () => !relay?.relayed },
    );
    subscription?.unsubscribe();
    if (options.toolChoice === "none" && reply.message.tool_calls?.length) {
      // a provider that ignored tool_choice none: its calls are not part of the answer
      const { tool_calls: _ignored, ...message } = reply.message;
      reply = { ...reply, message: { ...message, content: message.content ?? "" }, finishReason: "stop" };
    }
    checkResponseFormat(reply.message, options.responseFormat);
    relay?.complete(reply.message);
    return reply;
  } finally {
    subscription?.unsubscribe();
  }
}
