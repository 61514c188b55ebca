import { z } from "zod";
import { AssistantMessage, ChatMessage, ToolCallDelta } from "./chat.js";
import { RequestMeta, TenantId, TokenUsage } from "./common.js";
import { WireError } from "./errors.js";
import { ModelOptions } from "./model.js";
import { StorableString } from "./storable.js";

export const RunPriority = z.enum(["interactive", "batch"]);
export type RunPriority = z.infer<typeof RunPriority>;

export const RunStatus = z.enum(["queued", "running", "completed", "failed", "cancelled", "budget_exceeded"]);
export type RunStatus = z.infer<typeof RunStatus>;

export const TERMINAL_RUN_STATUSES: ReadonlySet<RunStatus> = new Set([
  "completed",
  "failed",
  "cancelled",
  "budget_exceeded",
]);

/** The JetStream message on `runs.<priority>.<tenant>` that asks for one agent run. */
export const RunRequest = z.object({
  v: z.literal(1).default(1),
  runId: z.string().min(1).max(100),
  tenant: TenantId,
  agent: z.string().min(1).max(100),
  input: z.array(ChatMessage).min(1),
  threadId: z.string().min(1).max(200).optional(),
  /**
   * The subject this run's events go to instead of `run.<id>.events` (its ingress replica's, for a
   * turn whose client waits on that replica); see `Subjects.replicaEvents`.
   */
  notify: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,200}$/)
    .optional(),
  /** The thread was made for this run: it has no earlier turns to read. */
  newThread: z.boolean().optional(),
  userId: z.string().max(200).optional(),
  priority: RunPriority,
  createdAt: z.number().int().positive(),
  /** Epoch ms after which the run is abandoned. */
  deadline: z.number().int().positive(),
  /** Deltas are published as `delta` events. */
  stream: z.boolean().default(false),
  source: z.enum(["chat", "runs", "event", "delegate"]).default("runs"),
  /**
   * The door the run came in by (`chat`, `runs`, `events`), which tool policies may name; a
   * delegated run has its parent's. Absent (older messages): taken from `source`, see `runChannel`.
   */
  channel: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .optional(),
  eventId: z.string().optional(),
  parentRunId: z.string().optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  /** Per-run overrides, never above the agent's own limits. */
  model: z.string().optional(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().positive().optional(),
  /**
   * The client's model options (OpenAI `tool_choice`, `response_format`, `seed`, …), passed to the
   * run's model calls. A forcing `toolChoice` (`required` or a named tool) holds for the run's first
   * model step only; later steps are `auto`, so a run that calls its own tools can still answer.
   */
  modelOptions: ModelOptions.optional(),
  /**
   * The client asked for deep analysis: each model step of the run says so (`ModelChatRequest`
   * `deepAnalysis`), and the model proxy routes it to the strong tier unless a rule routes it first.
   */
  deepAnalysis: z.boolean().optional(),
  budget: z
    .object({
      maxSteps: z.number().int().positive().optional(),
      timeMs: z.number().int().positive().optional(),
      costUsd: z.number().positive().optional(),
    })
    .optional(),
  /** Client-declared tools (OpenAI `tools`): calls to them end the run and go back to the client. */
  clientTools: z.array(z.unknown()).optional(),
});
export type RunRequest = z.infer<typeof RunRequest>;

/** What a caller says of a new run; `buildRunRequest` fills in the rest. */
export type RunRequestInit = Omit<RunRequest, "v" | "createdAt" | "deadline" | "stream" | "channel"> & {
  /** When the run was asked for (epoch ms); now by default. */
  createdAt?: number;
  /** How long from `createdAt` the run may take, its wait in the queue included. */
  timeoutMs: number;
  /** A deadline the run may not pass whatever its timeout: a delegated run's parent's. */
  notAfter?: number;
  stream?: boolean;
  /** Its door; by default the one its source implies (see `channelOf`). */
  channel?: string;
};

/**
 * A run request with its common fields filled in. The one deadline rule of every run:
 * `createdAt + timeoutMs`, never past `notAfter`. Fields left undefined are left out.
 */
export function buildRunRequest(init: RunRequestInit): RunRequest {
  const { createdAt = Date.now(), timeoutMs, notAfter, stream = false, channel, ...fields } = init;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw new RangeError(`a run's timeoutMs must be a positive whole number of ms, not ${timeoutMs}`);
  if (notAfter !== undefined && !Number.isInteger(notAfter))
    throw new RangeError(`a run's notAfter must be an epoch ms, not ${notAfter}`);
  const defined = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
  const door = channel ?? channelOf(init.source);
  return {
    v: 1,
    ...(defined as Omit<RunRequest, "v" | "createdAt" | "deadline" | "stream" | "channel">),
    createdAt,
    deadline: Math.min(createdAt + timeoutMs, notAfter ?? Number.POSITIVE_INFINITY),
    stream,
    ...(door === undefined ? {} : { channel: door }),
  };
}

/** The channel of a run that came in by `source` (a delegated run has none of its own). */
export function channelOf(source: RunRequest["source"]): string | undefined {
  switch (source) {
    case "chat":
      return "chat";
    case "runs":
      return "runs";
    case "event":
      return "events";
    case "delegate":
      return undefined;
  }
}

/** The channel a run's tool calls are checked against: its own, or the one its source implies. */
export function runChannel(request: Pick<RunRequest, "channel" | "source">): string | undefined {
  return request.channel ?? channelOf(request.source);
}

const EventBase = z.object({ runId: z.string(), seq: z.number().int().nonnegative(), ts: z.number() });

export const RunStartedEvent = EventBase.extend({
  type: z.literal("run-started"),
  agent: z.string(),
  attempt: z.number().int().positive(),
});
export const StepStartedEvent = EventBase.extend({
  type: z.literal("step-started"),
  step: z.number().int().nonnegative(),
  kind: z.enum(["model", "tools", "plan"]),
});
export const DeltaEvent = EventBase.extend({
  type: z.literal("delta"),
  step: z.number().int().nonnegative(),
  content: z.string().optional(),
  /**
   * Where `content` starts in the text of its step. A step's text may be sent again (a run taken
   * over by another worker): a listener keeps what it has and takes only what lies past it.
   */
  offset: z.number().int().nonnegative().optional(),
  toolCalls: z.array(ToolCallDelta).optional(),
});
export const ToolCalledEvent = EventBase.extend({
  type: z.literal("tool-called"),
  step: z.number().int().nonnegative(),
  callId: z.string(),
  name: z.string(),
  arguments: z.string(),
});
export const ToolResultEvent = EventBase.extend({
  type: z.literal("tool-result"),
  step: z.number().int().nonnegative(),
  callId: z.string(),
  name: z.string(),
  status: z.string(),
  content: z.string(),
  latencyMs: z.number().nonnegative(),
  cached: z.boolean(),
});
export const UsageEvent = EventBase.extend({
  type: z.literal("usage"),
  step: z.number().int().nonnegative(),
  model: z.string(),
  provider: z.string(),
  usage: TokenUsage,
  costUsd: z.number().nonnegative(),
});
export const RunFinishedEvent = EventBase.extend({
  type: z.literal("run-finished"),
  status: RunStatus,
  output: AssistantMessage.optional(),
  finishReason: z.string().optional(),
  usage: TokenUsage,
  costUsd: z.number().nonnegative(),
  steps: z.number().int().nonnegative(),
  error: WireError.optional(),
  threadId: z.string().optional(),
});
export const RunEvent = z.discriminatedUnion("type", [
  RunStartedEvent,
  StepStartedEvent,
  DeltaEvent,
  ToolCalledEvent,
  ToolResultEvent,
  UsageEvent,
  RunFinishedEvent,
]);
export type RunEvent = z.infer<typeof RunEvent>;
export type RunFinishedEvent = z.infer<typeof RunFinishedEvent>;
export type DeltaEvent = z.infer<typeof DeltaEvent>;

/** A run as stored by the orchestrator. */
export const RunRecord = z.object({
  runId: z.string(),
  tenant: z.string(),
  agent: z.string(),
  status: RunStatus,
  priority: RunPriority,
  threadId: z.string().nullable(),
  userId: z.string().nullable(),
  parentRunId: z.string().nullable(),
  steps: z.number().int().nonnegative(),
  usage: TokenUsage,
  costUsd: z.number().nonnegative(),
  output: AssistantMessage.nullable(),
  error: WireError.nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
});
export type RunRecord = z.infer<typeof RunRecord>;

export const RunGetRequest = z.object({ meta: RequestMeta, runId: z.string().min(1) });
export type RunGetRequest = z.infer<typeof RunGetRequest>;
export const RunGetReply = z.object({ run: RunRecord.nullable() });
export type RunGetReply = z.infer<typeof RunGetReply>;

export const RunListRequest = z.object({
  meta: RequestMeta,
  threadId: StorableString.max(200).optional(),
  status: RunStatus.optional(),
  agent: StorableString.max(100).optional(),
  limit: z.number().int().positive().max(100).default(20),
  cursor: z.string().optional(),
});
export type RunListRequest = z.infer<typeof RunListRequest>;
export const RunListReply = z.object({ runs: z.array(RunRecord), nextCursor: z.string().nullable() });
export type RunListReply = z.infer<typeof RunListReply>;

export const RunCancelRequest = z.object({
  meta: RequestMeta,
  runId: z.string().min(1),
  reason: z.string().optional(),
});
export type RunCancelRequest = z.infer<typeof RunCancelRequest>;
export const RunCancelReply = z.object({ runId: z.string(), status: RunStatus, cancelled: z.boolean() });
export type RunCancelReply = z.infer<typeof RunCancelReply>;

/** Records a run submitted through the runs API as `queued`, so it can be looked up before a worker takes it. */
export const RunRegisterRequest = z.object({ meta: RequestMeta, run: RunRequest });
export type RunRegisterRequest = z.infer<typeof RunRegisterRequest>;
export const RunRegisterReply = z.object({ runId: z.string() });
export type RunRegisterReply = z.infer<typeof RunRegisterReply>;
