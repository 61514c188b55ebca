import type { RunPriority } from "./runs.js";

/** Every NATS subject and JetStream stream name of the runtime. */
export const Subjects = {
  runs: (priority: RunPriority, tenant: string) => `runs.${priority}.${tenant}`,
  runsInteractiveAll: "runs.interactive.>",
  runsBatchAll: "runs.batch.>",
  runEvents: (runId: string) => `run.${runId}.events`,
  runEventsAll: "run.*.events",
  runGet: "run.get",
  runList: "run.list",
  runCancel: "run.cancel",
  runRegister: "run.register",
  /** Scrubs the runs of threads or of an end user (not `runs.*`: that is the RUNS stream's). */
  runForget: "run.forget",
  /** Core NATS broadcast so every worker can stop a cancelled run between steps. */
  runCancelled: (runId: string) => `run.${runId}.cancelled`,
  runCancelledAll: "run.*.cancelled",
  /**
   * Where the orchestrator sends the events of a run whose only listener is one ingress replica (a
   * chat turn): one subscription per replica instead of one per run, and nothing kept in RUN_EVENTS.
   */
  replicaEvents: (replica: string) => `ingress.${replica}.events`,
  /**
   * Where the model proxy streams one step's answer as it comes (`ModelStreamChunk`), named by the
   * orchestrator in `model.chat`'s `streamSubject` and read only by the worker running that step.
   */
  runDeltas: (runId: string, step: number) => `run.${runId}.deltas.${step}`,
  events: (source: string, type: string) => `events.${source}.${type}`,
  eventsAll: "events.>",
  modelChat: "model.chat",
  modelEmbed: "model.embed",
  modelList: "model.list",
  modelForget: "model.forget",
  toolExec: (name: string) => `tool.exec.${name}`,
  /** Calls the executor forwards to tools hosted by other services. */
  toolRemote: (name: string) => `tool.remote.${name}`,
  toolBatch: "tool.batch",
  toolList: "tool.list",
  toolRegister: "tool.register",
  toolForget: "tool.forget",
  memoryContext: "memory.context",
  memoryAppend: "memory.append",
  memoryMessages: "memory.messages",
  memorySearch: "memory.search",
  memoryRemember: "memory.remember",
  memoryForget: "memory.forget",
  memoryList: "memory.list",
  memoryJobs: "memory.jobs",
  /**
   * A finished turn's messages, journaled by the orchestrator for memory to store in its thread
   * (THREAD_TURNS, a work queue). One subject per thread, so memory can find a thread's turns it
   * has not stored yet. The thread id is base64url-encoded: ids may hold '.', a token separator.
   */
  threadTurns: (tenant: string, threadId: string) =>
    `memory.turns.${tenant}.${Buffer.from(threadId).toString("base64url")}`,
  threadTurnsAll: "memory.turns.>",
  usageModel: "usage.model",
  usageTool: "usage.tool",
  usageAll: "usage.>",
  deadLetter: (origin: string) => `dlq.${origin}`,
  deadLetterAll: "dlq.>",
} as const;

export const Streams = {
  runs: "RUNS",
  runEvents: "RUN_EVENTS",
  events: "EVENTS",
  memoryJobs: "MEMORY_JOBS",
  threadTurns: "THREAD_TURNS",
  usage: "USAGE",
  deadLetters: "DEAD_LETTERS",
} as const;

/**
 * Durable JetStream consumers. Their names are a contract: ingress reads the backlog of the
 * orchestrator's run consumers (for Retry-After and the dashboard), tests and operators read them
 * all, and a renamed durable would start again from the stream's first message.
 */
export const Consumers = {
  /** The orchestrator's run queue of one lane, on RUNS. */
  runs: (priority: RunPriority) => `orchestrator-${priority}` as const,
  runsInteractive: "orchestrator-interactive",
  runsBatch: "orchestrator-batch",
  /** The orchestrator's agent triggers, on EVENTS. */
  events: "orchestrator-events",
  /** Memory's summaries and indexing, on MEMORY_JOBS. */
  memoryJobs: "memory-jobs",
  /** Memory's store of finished turns, on THREAD_TURNS. */
  threadTurns: "memory-turns",
  /** Ingress's usage writer, on USAGE. */
  usage: "ingress-usage",
} as const;

/** Queue groups: one per service, so replicas share the load. */
export const QueueGroups = {
  orchestrator: "orchestrator",
  modelProxy: "model-proxy",
  toolExecutor: "tool-executor",
  memory: "memory",
  ingress: "ingress",
} as const;

export const Headers = {
  messageId: "Nats-Msg-Id",
  traceparent: "traceparent",
  tracestate: "tracestate",
  deadline: "x-deadline",
  tenant: "x-tenant",
  error: "x-error",
} as const;
