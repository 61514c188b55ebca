export type { Endpoint } from "./catalog.js";
export { defineEndpoint, Endpoints, toolExecEndpoint } from "./catalog.js";
export {
  AssistantMessage,
  ChatMessage,
  ContentPart,
  lastUserText,
  MessageContent,
  ResponseFormat,
  SystemMessage,
  ToolCall,
  ToolCallDelta,
  ToolChoice,
  ToolMessage,
  ToolSpec,
  textOf,
  UserMessage,
} from "./chat.js";
export {
  ID_PATTERN,
  Id,
  idPattern,
  MESSAGE_VERSION,
  Priority,
  priorityOf,
  RequestMeta,
  TENANT_ID_PATTERN,
  TenantId,
  TokenUsage,
} from "./common.js";
export { DeadLetter, ErrorEnvelope, replyEnvelope } from "./envelope.js";
export type { FieldIssue } from "./errors.js";
export {
  ErrorCode,
  formatPath,
  formatZodError,
  HttpErrorBody,
  httpStatusFor,
  isRetryableCode,
  RuntimeError,
  toWireError,
  WireError,
  zodIssues,
} from "./errors.js";
export { CloudEvent, subjectToken } from "./events.js";
export {
  FORGET_RUN_BATCH,
  ModelForgetReply,
  ModelForgetRequest,
  RunForgetReply,
  RunForgetRequest,
  ToolForgetReply,
  ToolForgetRequest,
} from "./forget.js";
export { inLineageOf, runLineage } from "./lineage.js";
export {
  ContextSection,
  MemoryAppendReply,
  MemoryAppendRequest,
  MemoryContextReply,
  MemoryContextRequest,
  MemoryDocument,
  MemoryForgetReply,
  MemoryForgetRequest,
  MemoryHit,
  MemoryJob,
  MemoryListReply,
  MemoryListRequest,
  MemoryMessagesReply,
  MemoryMessagesRequest,
  MemoryRememberReply,
  MemoryRememberRequest,
  MemoryScope,
  MemorySearchReply,
  MemorySearchRequest,
  MetadataFilter,
  memoryDocumentId,
  memoryIdPrefix,
  memoryOwner,
  StoredMessage,
} from "./memory.js";
export {
  ModelChatReply,
  ModelChatRequest,
  ModelEmbedReply,
  ModelEmbedRequest,
  ModelListReply,
  ModelListRequest,
  ModelOptions,
  ModelStreamChunk,
  RouteDecision,
  TaskKind,
} from "./model.js";
export {
  ChatCompletionRequest,
  CompletionUsage,
  EmbeddingsRequest,
  modelOptionsOf,
} from "./openai.js";
export type { RetryOptions } from "./retry.js";
export { backoffMs, retryUntilDeadline } from "./retry.js";
export type { RunRequestInit } from "./runs.js";
export {
  buildRunRequest,
  channelOf,
  DeltaEvent,
  RunCancelReply,
  RunCancelRequest,
  RunEvent,
  RunFinishedEvent,
  RunGetReply,
  RunGetRequest,
  RunListReply,
  RunListRequest,
  RunPriority,
  RunRecord,
  RunRegisterReply,
  RunRegisterRequest,
  RunRequest,
  RunStatus,
  runChannel,
  TERMINAL_RUN_STATUSES,
} from "./runs.js";
export {
  findUnstorable,
  MAX_JSON_DEPTH,
  refineStorable,
  StorableString,
  unstorableReason,
} from "./storable.js";
export { Consumers, Headers, QueueGroups, Streams, Subjects } from "./subjects.js";
export type { ToolArguments } from "./tool.js";
export {
  parseToolArguments,
  staleAfterMs,
  ToolBatchReply,
  ToolBatchRequest,
  ToolCallStatus,
  ToolChannel,
  ToolDescriptor,
  ToolExecReply,
  ToolExecRequest,
  ToolListReply,
  ToolListRequest,
  ToolRegistration,
} from "./tool.js";
export { ModelUsageRecord, ToolUsageRecord } from "./usage.js";
