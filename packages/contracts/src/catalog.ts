import type { z } from "zod";
import {
  ModelForgetReply,
  ModelForgetRequest,
  RunForgetReply,
  RunForgetRequest,
  ToolForgetReply,
  ToolForgetRequest,
} from "./forget.js";
import {
  MemoryAppendReply,
  MemoryAppendRequest,
  MemoryContextReply,
  MemoryContextRequest,
  MemoryForgetReply,
  MemoryForgetRequest,
  MemoryListReply,
  MemoryListRequest,
  MemoryMessagesReply,
  MemoryMessagesRequest,
  MemoryRememberReply,
  MemoryRememberRequest,
  MemorySearchReply,
  MemorySearchRequest,
} from "./memory.js";
import {
  ModelChatReply,
  ModelChatRequest,
  ModelEmbedReply,
  ModelEmbedRequest,
  ModelListReply,
  ModelListRequest,
} from "./model.js";
import {
  RunCancelReply,
  RunCancelRequest,
  RunGetReply,
  RunGetRequest,
  RunListReply,
  RunListRequest,
  RunRegisterReply,
  RunRegisterRequest,
} from "./runs.js";
import { Subjects } from "./subjects.js";
import {
  ToolBatchReply,
  ToolBatchRequest,
  ToolExecReply,
  ToolExecRequest,
  ToolListReply,
  ToolListRequest,
} from "./tool.js";

/** A request/reply endpoint: subject plus the schemas both sides validate against. */
export interface Endpoint<Req extends z.ZodType = z.ZodType, Rep extends z.ZodType = z.ZodType> {
  subject: string;
  request: Req;
  reply: Rep;
  /**
   * Whether this request may be sent again when its outcome is unknown: the
   * replica handling it died or went silent, or an attempt ran out of time.
   * True for reads and for writes under an idempotency key. Requests no
   * replica took (no responders, or a replica refused while full or shutting
   * down) are re-sent whatever this says. Absent: never re-sent.
   */
  isRetrySafe?(request: z.input<Req>): boolean;
  /**
   * Longest one attempt may take before another replica is asked (retry-safe
   * endpoints only). Absent: an attempt lasts until the deadline as long as its
   * replica keeps signalling that it is alive.
   */
  attemptTimeoutMs?: number;
}

export interface EndpointPolicy<Req extends z.ZodType> {
  /** `true` for reads and idempotent writes; a function when it depends on the request. */
  retrySafe?: boolean | ((request: z.input<Req>) => boolean);
  attemptTimeoutMs?: number;
}

export function defineEndpoint<Req extends z.ZodType, Rep extends z.ZodType>(
  subject: string,
  request: Req,
  reply: Rep,
  policy: EndpointPolicy<Req> = {},
): Endpoint<Req, Rep> {
  const endpoint: Endpoint<Req, Rep> = { subject, request, reply };
  const { retrySafe, attemptTimeoutMs } = policy;
  if (typeof retrySafe === "function") endpoint.isRetrySafe = retrySafe;
  else if (retrySafe) endpoint.isRetrySafe = () => true;
  if (attemptTimeoutMs !== undefined) endpoint.attemptTimeoutMs = attemptTimeoutMs;
  return endpoint;
}

/** Reads answer quickly; a replica slower than this is passed over for another. */
const quickRead = { retrySafe: true, attemptTimeoutMs: 2_000 } as const;
const read = { retrySafe: true, attemptTimeoutMs: 5_000 } as const;

export const Endpoints = {
  // model calls are idempotent by meta.requestId and may take long: replica death is detected by keep-alives
  modelChat: defineEndpoint(Subjects.modelChat, ModelChatRequest, ModelChatReply, { retrySafe: true }),
  modelEmbed: defineEndpoint(Subjects.modelEmbed, ModelEmbedRequest, ModelEmbedReply, { retrySafe: true }),
  modelList: defineEndpoint(Subjects.modelList, ModelListRequest, ModelListReply, quickRead),
  // side effects are keyed per call: safe when every call carries its key
  toolBatch: defineEndpoint(Subjects.toolBatch, ToolBatchRequest, ToolBatchReply, {
    retrySafe: (request) => request.calls.every((call) => call.idempotencyKey !== undefined),
  }),
  toolList: defineEndpoint(Subjects.toolList, ToolListRequest, ToolListReply, quickRead),
  memoryContext: defineEndpoint(Subjects.memoryContext, MemoryContextRequest, MemoryContextReply, read),
  // messages are keyed by their ids
  memoryAppend: defineEndpoint(Subjects.memoryAppend, MemoryAppendRequest, MemoryAppendReply, {
    retrySafe: true,
  }),
  memoryMessages: defineEndpoint(Subjects.memoryMessages, MemoryMessagesRequest, MemoryMessagesReply, read),
  memorySearch: defineEndpoint(Subjects.memorySearch, MemorySearchRequest, MemorySearchReply, read),
  memoryRemember: defineEndpoint(Subjects.memoryRemember, MemoryRememberRequest, MemoryRememberReply, {
    retrySafe: (request) => request.documentId !== undefined,
  }),
  memoryForget: defineEndpoint(Subjects.memoryForget, MemoryForgetRequest, MemoryForgetReply),
  memoryList: defineEndpoint(Subjects.memoryList, MemoryListRequest, MemoryListReply, read),
  runGet: defineEndpoint(Subjects.runGet, RunGetRequest, RunGetReply, quickRead),
  runList: defineEndpoint(Subjects.runList, RunListRequest, RunListReply, read),
  runCancel: defineEndpoint(Subjects.runCancel, RunCancelRequest, RunCancelReply),
  // recording a queued run is idempotent (a run already there is left as it is)
  runRegister: defineEndpoint(Subjects.runRegister, RunRegisterRequest, RunRegisterReply, quickRead),
  // forgetting again forgets nothing more: safe to re-send
  runForget: defineEndpoint(Subjects.runForget, RunForgetRequest, RunForgetReply, { retrySafe: true }),
  modelForget: defineEndpoint(Subjects.modelForget, ModelForgetRequest, ModelForgetReply, {
    retrySafe: true,
  }),
  toolForget: defineEndpoint(Subjects.toolForget, ToolForgetRequest, ToolForgetReply, { retrySafe: true }),
} as const;

/** `tool.exec.<name>` — one endpoint per tool, same schemas; safe to re-send under an idempotency key. */
export function toolExecEndpoint(name: string) {
  return defineEndpoint(Subjects.toolExec(name), ToolExecRequest, ToolExecReply, {
    retrySafe: (request) => request.idempotencyKey !== undefined,
  });
}
