import type { z } from "zod";
import {
  MemoryAppendReply,
  MemoryAppendRequest,
  MemoryContextReply,
  MemoryContextRequest,
  MemoryForgetReply,
  MemoryForgetRequest,
  MemoryMessagesReply,
  MemoryMessagesRequest,
  MemoryRememberReply,
  MemoryRememberRequest,
  MemorySearchReply,
  MemorySearchRequest,
} from "./memory.js";
import { ModelChatReply, ModelChatRequest, ModelEmbedReply, ModelEmbedRequest } from "./model.js";
import {
  RunCancelReply,
  RunCancelRequest,
  RunGetReply,
  RunGetRequest,
  RunListReply,
  RunListRequest,
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
}

export function defineEndpoint<Req extends z.ZodType, Rep extends z.ZodType>(
  subject: string,
  request: Req,
  reply: Rep,
): Endpoint<Req, Rep> {
  return { subject, request, reply };
}

export const Endpoints = {
  modelChat: defineEndpoint(Subjects.modelChat, ModelChatRequest, ModelChatReply),
  modelEmbed: defineEndpoint(Subjects.modelEmbed, ModelEmbedRequest, ModelEmbedReply),
  toolBatch: defineEndpoint(Subjects.toolBatch, ToolBatchRequest, ToolBatchReply),
  toolList: defineEndpoint(Subjects.toolList, ToolListRequest, ToolListReply),
  memoryContext: defineEndpoint(Subjects.memoryContext, MemoryContextRequest, MemoryContextReply),
  memoryAppend: defineEndpoint(Subjects.memoryAppend, MemoryAppendRequest, MemoryAppendReply),
  memoryMessages: defineEndpoint(Subjects.memoryMessages, MemoryMessagesRequest, MemoryMessagesReply),
  memorySearch: defineEndpoint(Subjects.memorySearch, MemorySearchRequest, MemorySearchReply),
  memoryRemember: defineEndpoint(Subjects.memoryRemember, MemoryRememberRequest, MemoryRememberReply),
  memoryForget: defineEndpoint(Subjects.memoryForget, MemoryForgetRequest, MemoryForgetReply),
  runGet: defineEndpoint(Subjects.runGet, RunGetRequest, RunGetReply),
  runList: defineEndpoint(Subjects.runList, RunListRequest, RunListReply),
  runCancel: defineEndpoint(Subjects.runCancel, RunCancelRequest, RunCancelReply),
} as const;

/** `tool.exec.<name>` — one endpoint per tool, same schemas. */
export function toolExecEndpoint(name: string) {
  return defineEndpoint(Subjects.toolExec(name), ToolExecRequest, ToolExecReply);
}
