import type { Bus } from "@agent-runtime/bus";
import type { AgentConfig } from "@agent-runtime/config";
import {
  type AssistantMessage,
  type ChatMessage,
  Endpoints,
  ModelStreamChunk,
  type RequestMeta,
  RunEvent,
  type RunFinishedEvent,
  type RunRequest,
  type RunStatus,
  RuntimeError,
  Subjects,
  type TokenUsage,
  type ToolSpec,
  textOf,
  toWireError,
  type WireError,
} from "@agent-runtime/contracts";
import type { Logger } from "@agent-runtime/telemetry";
import { z } from "zod";
import { DELEGATE_TOOL, delegate, delegateSpec } from "./delegation.js";
import { checkInput, checkOutput, structuredOutputProblems } from "./guardrails.js";
import { makePlan, Plan } from "./planner.js";
import type { RecordedStep, RunStore } from "./run-store.js";

export interface LoopDeps {
  bus: Bus;
  store: RunStore;
  logger: Logger;
  agents: Record<string, AgentConfig>;
  toolSpecs: (agent: string, names: string[], tenant: string) => Promise<ToolSpec[]>;
}

const emptyUsage = (): TokenUsage => ({
  promptTokens: 0,
  completionTokens: 0,
  cachedTokens: 0,
  totalTokens: 0,
});

function sumUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    cachedTokens: a.cachedTokens + b.cachedTokens,
    totalTokens: a.totalTokens + b.totalTokens,
  };
}

function addUsage(total: TokenUsage, usage: TokenUsage): void {
  total.promptTokens += usage.promptTokens;
  total.completionTokens += usage.completionTokens;
  total.cachedTokens += usage.cachedTokens;
  total.totalTokens += usage.totalTokens;
}

/** Publishes one run's events in order on `run.<id>.events`. */
class EventPublisher {
  private seq = 0;
  constructor(
    private readonly bus: Bus,
    private readonly runId: string,
    start: number,
  ) {
    this.seq = start;
  }
  emit(event: Record<string, unknown> & { type: RunEvent["type"] }): void {
    this.bus.publish(Subjects.runEvents(this.runId), RunEvent, {
      ...event,
      runId: this.runId,
      seq: this.seq++,
      ts: Date.now(),
    } as RunEvent);
  }
}

/**
 * Runs one agent run to its end: context from memory, model steps, parallel
 * tool calls, budgets and guardrails; each finished step is recorded so a
 * redelivered run resumes where it stopped.
 */
export async function executeRun(
  deps: LoopDeps,
  request: RunRequest,
  options: { signal: AbortSignal; deliveryCount: number; finalAttempt: boolean },
): Promise<RunStatus> {
  const { bus, store } = deps;
  const begun = await store.begin(request);
  const events = new EventPublisher(bus, request.runId, begun.attempt * 10_000);
  if (begun.status !== "running" && begun.status !== "queued") {
    const record = await store.get(request.tenant, request.runId);
    events.emit({
      type: "run-finished",
      status: begun.status,
      ...(record?.output ? { output: record.output } : {}),
      usage: record?.usage ?? emptyUsage(),
      costUsd: record?.costUsd ?? 0,
      steps: record?.steps ?? 0,
      ...(record?.error ? { error: record.error } : {}),
      ...(request.threadId ? { threadId: request.threadId } : {}),
    });
    return begun.status;
  }
  const agent = deps.agents[request.agent];
  const usage = emptyUsage();
  let cost = 0;
  const steps = begun.steps;
  for (const step of steps) {
    addUsage(usage, step.usage);
    cost += step.costUsd;
  }
  const finish = async (
    status: RunStatus,
    output: AssistantMessage | undefined,
    error: WireError | undefined,
    finishReason?: string,
    /** Writes that must land before the client hears the run is over (they run alongside the status update). */
    persisted?: Promise<unknown>,
  ): Promise<RunStatus> => {
    const [final] = await Promise.all([store.finish(request.runId, status, output, error), persisted]);
    const event: Omit<RunFinishedEvent, "runId" | "seq" | "ts"> = {
      type: "run-finished",
      status: final,
      ...(output && final === status ? { output } : {}),
      ...(finishReason ? { finishReason } : {}),
      usage,
      costUsd: cost,
      steps: steps.length,
      ...(error
        ? { error }
        : final !== status
          ? { error: { code: "cancelled", message: "run was cancelled", retryable: false } }
          : {}),
      ...(request.threadId ? { threadId: request.threadId } : {}),
    };
    events.emit(event);
    return final;
  };

  if (!agent) {
    return finish("failed", undefined, {
      code: "not_found",
      message: `unknown agent "${request.agent}"`,
      retryable: false,
    });
  }
  if (agent.tenants.length > 0 && !agent.tenants.includes(request.tenant)) {
    return finish("failed", undefined, {
      code: "forbidden",
      message: `agent "${request.agent}" is not available to this tenant`,
      retryable: false,
    });
  }
  events.emit({ type: "run-started", agent: request.agent, attempt: begun.attempt });

  const cancel = new AbortController();
  const cancelSubscription = bus.subscribe(Subjects.runCancelled(request.runId), z.unknown(), () =>
    cancel.abort(new RuntimeError("cancelled", "run was cancelled")),
  );
  const signal = AbortSignal.any([options.signal, cancel.signal]);
  const startedAt = request.createdAt;
  const timeLimit = Math.min(request.deadline, startedAt + (request.budget?.timeMs ?? agent.timeBudgetMs));
  const maxSteps = Math.min(request.budget?.maxSteps ?? agent.maxSteps, agent.maxSteps);
  const costLimit = Math.min(request.budget?.costUsd ?? agent.costBudgetUsd, agent.costBudgetUsd);
  const meta = (requestId: string): RequestMeta => ({
    v: 1,
    tenant: request.tenant,
    requestId,
    runId: request.runId,
    agent: request.agent,
    ...(request.userId ? { userId: request.userId } : {}),
    ...(request.threadId ? { threadId: request.threadId } : {}),
    deadline: timeLimit,
  });

  try {
    const input = checkInput(request.input, agent.guardrails);
    const clientTools = (request.clientTools ?? []) as ToolSpec[];
    const clientToolNames = new Set(clientTools.map((tool) => tool.function.name));
    const tools = [
      ...(agent.tools.length > 0 ? await deps.toolSpecs(request.agent, agent.tools, request.tenant) : []),
      ...(agent.delegates.length > 0 ? [delegateSpec(agent.delegates, deps.agents)] : []),
      ...clientTools,
    ];
    const context = await bus.request(Endpoints.memoryContext, {
      meta: meta(`${request.runId}:context`),
      ...(request.threadId ? { threadId: request.threadId } : {}),
      agent: request.agent,
      systemPrompt: agent.systemPrompt,
      input,
      budgetTokens: agent.memory.contextBudgetTokens,
      retrieval: agent.memory.retrieval,
      ...(request.userId ? { userId: request.userId } : {}),
      // the context is counted with the target model's tokenizer when the model is known
      ...((request.model ?? agent.model) ? { model: request.model ?? agent.model } : {}),
    });
    const messages: ChatMessage[] = [...context.messages];
    let executorTier = agent.tier;
    if (agent.planner) {
      let decision = await store.loadPlan(request.runId);
      if (!decision.decided) {
        events.emit({ type: "step-started", step: steps.length, kind: "plan" });
        const made = await makePlan(
          bus,
          meta(`${request.runId}:plan`),
          input,
          tools.map((tool) => tool.function.name),
        );
        await store.savePlan(request.runId, made.plan, made.reason, made.costUsd, made.usage);
        if (made.usage) addUsage(usage, made.usage);
        cost += made.costUsd;
        decision = { decided: true, plan: made.plan, reason: made.reason };
      }
      const plan = Plan.safeParse(decision.plan);
      if (plan.success) {
        // a fast-tier plan, followed by a strong-tier executor
        executorTier = agent.tier ?? "strong";
        messages.splice(Math.max(1, messages.length - input.length), 0, {
          role: "system",
          content: `Follow this plan:\n${plan.data.steps.map((step, index) => `${index + 1}. ${step}`).join("\n")}`,
        });
      }
      deps.logger.debug(
        { runId: request.runId, planned: plan.success, reason: decision.reason },
        "planning decision",
      );
    }
    for (const step of steps) messages.push(step.assistant, ...step.toolMessages);

    for (let stepIndex = steps.length; ; stepIndex++) {
      if (signal.aborted)
        throw signal.reason instanceof RuntimeError
          ? signal.reason
          : new RuntimeError("cancelled", "run was cancelled");
      if (stepIndex >= maxSteps) {
        return finish("budget_exceeded", undefined, {
          code: "budget_exceeded",
          message: `stopped after ${maxSteps} steps without a final answer`,
          retryable: false,
          details: { budget: "steps", limit: maxSteps, spentUsd: cost, usage },
        });
      }
      if (cost >= costLimit) {
        return finish("budget_exceeded", undefined, {
          code: "budget_exceeded",
          message: `spent $${cost.toFixed(6)} of a $${costLimit} budget`,
          retryable: false,
          details: { budget: "cost", limitUsd: costLimit, spentUsd: cost, usage },
        });
      }
      if (Date.now() >= timeLimit) {
        return finish("budget_exceeded", undefined, {
          code: "budget_exceeded",
          message: `time budget of ${timeLimit - startedAt} ms used up`,
          retryable: false,
          details: { budget: "time", spentUsd: cost, usage },
        });
      }
      events.emit({ type: "step-started", step: stepIndex, kind: "model" });
      const reply = await callModel(
        deps,
        request,
        { ...agent, ...(executorTier ? { tier: executorTier } : {}) },
        messages,
        tools,
        stepIndex,
        meta(`${request.runId}:${stepIndex}`),
        events,
        signal,
      );
      addUsage(usage, reply.usage);
      cost += reply.costUsd;
      events.emit({
        type: "usage",
        step: stepIndex,
        model: reply.model,
        provider: reply.provider,
        usage: reply.usage,
        costUsd: reply.costUsd,
      });
      const assistant = reply.message;
      const calls = assistant.tool_calls ?? [];
      const record = (
        toolMessages: ChatMessage[],
      ): RecordedStep & { model: string; provider: string; latencyMs: number; route: string } => ({
        step: stepIndex,
        assistant,
        toolMessages,
        usage: reply.usage,
        costUsd: reply.costUsd,
        model: reply.model,
        provider: reply.provider,
        latencyMs: reply.latencyMs,
        route: reply.route.reason,
      });

      if (calls.length === 0 || calls.some((call) => clientToolNames.has(call.function.name))) {
        let text = textOf(assistant.content ?? "");
        let problems = calls.length === 0 ? structuredOutputProblems(text, agent.guardrails) : [];
        if (problems.length > 0) {
          // one repair attempt: the model sees what is wrong with its answer
          const repair = await callModel(
            deps,
            { ...request, stream: false },
            { ...agent, ...(executorTier ? { tier: executorTier } : {}) },
            [
              ...messages,
              assistant,
              {
                role: "user",
                content: `Your answer is invalid: ${problems.join("; ")}. Reply again with only the corrected JSON.`,
              },
            ],
            [],
            stepIndex,
            meta(`${request.runId}:${stepIndex}:repair`),
            events,
            signal,
          );
          addUsage(usage, repair.usage);
          cost += repair.costUsd;
          reply.usage = sumUsage(reply.usage, repair.usage);
          reply.costUsd += repair.costUsd;
          text = textOf(repair.message.content ?? "");
          problems = structuredOutputProblems(text, agent.guardrails);
          if (problems.length > 0) {
            throw new RuntimeError(
              "guardrail_blocked",
              `answer failed the output checks after one repair: ${problems.slice(0, 5).join("; ")}`,
              {
                details: { rule: "structured_output", problems },
              },
            );
          }
          assistant.content = repair.message.content;
        }
        checkOutput(text, agent.guardrails);
        steps.push(record([]));
        // the last step, the turn in memory and the run's status are written together
        const persisted = Promise.all([
          store.recordStep(request.runId, record([])),
          appendTurn(deps, request, input, steps, meta(`${request.runId}:append`)),
        ]);
        return finish(
          "completed",
          assistant,
          undefined,
          calls.length > 0 ? "tool_calls" : reply.finishReason,
          persisted,
        );
      }

      events.emit({ type: "step-started", step: stepIndex, kind: "tools" });
      for (const call of calls) {
        events.emit({
          type: "tool-called",
          step: stepIndex,
          callId: call.id,
          name: call.function.name,
          arguments: call.function.arguments,
        });
      }
      const delegated = calls.filter(
        (call) => call.function.name === DELEGATE_TOOL && agent.delegates.length > 0,
      );
      const regular = calls.filter((call) => !delegated.includes(call));
      const [batch, children] = await Promise.all([
        regular.length > 0
          ? runTools(deps, request, stepIndex, regular, meta(`${request.runId}:${stepIndex}:tools`), signal)
          : Promise.resolve({ results: [] }),
        Promise.all(
          delegated.map((call) =>
            delegate(deps, request, agent, call, stepIndex, Math.max(0, costLimit - cost), options),
          ),
        ),
      ]);
      batch.results.push(...children);
      batch.results.sort(
        (a, b) =>
          calls.findIndex((call) => call.id === a.callId) - calls.findIndex((call) => call.id === b.callId),
      );
      const toolMessages: ChatMessage[] = [];
      for (const result of batch.results) {
        cost += result.costUsd;
        events.emit({
          type: "tool-result",
          step: stepIndex,
          callId: result.callId,
          name: result.name,
          status: result.status,
          content: result.content.slice(0, 2000),
          latencyMs: result.latencyMs,
          cached: result.cached,
        });
        toolMessages.push({ role: "tool", tool_call_id: result.callId, content: result.content });
      }
      const toolCost = batch.results.reduce((sum, result) => sum + result.costUsd, 0);
      const recorded = record(toolMessages);
      recorded.costUsd += toolCost;
      await store.recordStep(request.runId, recorded);
      steps.push(recorded);
      messages.push(assistant, ...toolMessages);
    }
  } catch (error) {
    const wire = toWireError(error);
    if (wire.code === "cancelled" || cancel.signal.aborted) {
      return finish("cancelled", undefined, {
        code: "cancelled",
        message: "run was cancelled",
        retryable: false,
      });
    }
    if (
      Date.now() >= timeLimit - 10 &&
      (wire.code === "timeout" || wire.code === "upstream" || wire.code === "unavailable")
    ) {
      return finish("budget_exceeded", undefined, {
        code: "budget_exceeded",
        message: `time budget of ${timeLimit - startedAt} ms used up (${wire.message})`,
        retryable: false,
        details: { budget: "time", spentUsd: cost, usage },
      });
    }
    const status: RunStatus = wire.code === "budget_exceeded" ? "budget_exceeded" : "failed";
    // batch runs are retried with backoff on retryable failures; interactive runs fail fast
    if (request.priority === "batch" && wire.retryable && !options.finalAttempt) {
      deps.logger.warn(
        { runId: request.runId, error: wire.message, delivery: options.deliveryCount },
        "batch run failed; will retry",
      );
      throw error;
    }
    if (wire.code === "internal") deps.logger.error({ err: error, runId: request.runId }, "run failed");
    return finish(status, undefined, wire);
  } finally {
    cancelSubscription.unsubscribe();
  }
}

async function callModel(
  deps: LoopDeps,
  request: RunRequest,
  agent: AgentConfig,
  messages: ChatMessage[],
  tools: ToolSpec[],
  step: number,
  meta: RequestMeta,
  events: EventPublisher,
  signal: AbortSignal,
) {
  const { bus } = deps;
  const streamSubject = request.stream ? `run.${request.runId}.deltas.${step}` : undefined;
  const subscription = streamSubject
    ? bus.subscribe(streamSubject, ModelStreamChunk, (chunk) =>
        events.emit({
          type: "delta",
          step,
          ...(chunk.content !== undefined ? { content: chunk.content } : {}),
          ...(chunk.toolCalls ? { toolCalls: chunk.toolCalls } : {}),
        }),
      )
    : undefined;
  try {
    if (subscription) await bus.nc.flush();
    const call = bus.request(Endpoints.modelChat, {
      meta,
      messages,
      ...(tools.length > 0 ? { tools } : {}),
      task: tools.length > 0 ? "act" : "answer",
      ...(request.model ? { model: request.model } : agent.model ? { model: agent.model } : {}),
      ...(agent.tier ? { tier: agent.tier } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      ...(request.maxTokens !== undefined ? { maxTokens: request.maxTokens } : {}),
      ...(streamSubject ? { streamSubject } : {}),
    });
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
    aborted.catch(() => undefined);
    return await Promise.race([call, aborted]);
  } finally {
    subscription?.unsubscribe();
  }
}

/**
 * One model turn's tool calls through the executor, in parallel. A call that
 * another worker started before a crash ("already running") is asked again
 * until its recorded result is there, so it never runs twice.
 */
async function runTools(
  deps: LoopDeps,
  request: RunRequest,
  step: number,
  calls: NonNullable<AssistantMessage["tool_calls"]>,
  meta: RequestMeta,
  signal: AbortSignal,
) {
  const ask = (subset: typeof calls) =>
    deps.bus.request(Endpoints.toolBatch, {
      meta,
      calls: subset.map((call) => ({
        callId: call.id,
        name: call.function.name,
        arguments: call.function.arguments,
        idempotencyKey: `${request.runId}:${step}:${call.id}`,
      })),
    });
  const batch = await ask(calls);
  for (let attempt = 0; attempt < 60; attempt++) {
    const pending = batch.results.flatMap((result, index) =>
      result.error?.code === "conflict" ? [index] : [],
    );
    if (pending.length === 0 || signal.aborted || Date.now() >= meta.deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * 2 ** Math.min(attempt, 4))));
    const again = await ask(pending.map((index) => calls[index]!));
    pending.forEach((index, position) => {
      batch.results[index] = again.results[position]!;
    });
  }
  return batch;
}

async function appendTurn(
  deps: LoopDeps,
  request: RunRequest,
  input: ChatMessage[],
  steps: RecordedStep[],
  meta: RequestMeta,
): Promise<void> {
  if (!request.threadId) return;
  const messages: ChatMessage[] = [...input];
  for (const step of steps) messages.push(step.assistant, ...step.toolMessages);
  try {
    await deps.bus.request(Endpoints.memoryAppend, {
      meta,
      threadId: request.threadId,
      agent: request.agent,
      ...(request.userId ? { userId: request.userId } : {}),
      messages: messages.map((message, index) => ({ id: `${request.runId}:${index}`, message })),
    });
  } catch (error) {
    // the answer still goes out; the turn is missing from the thread
    deps.logger.error({ err: error, runId: request.runId }, "could not store the turn in memory");
  }
}
