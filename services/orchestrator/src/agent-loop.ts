import { type AgentConfig, agentOpenTo } from "@agent-runtime/config";
import {
  type AssistantMessage,
  type ChatMessage,
  type ModelChatReply,
  type RequestMeta,
  type RunRequest,
  type RunStatus,
  RuntimeError,
  runChannel,
  ToolSpec,
  type WireError,
} from "@agent-runtime/contracts";
import { z } from "zod";
import { RunBudget } from "./budgets.js";
import { DELEGATE_TOOL, delegateSpec } from "./delegation.js";
import { type FinalAnswer, finalAnswer } from "./final-answer.js";
import { checkInput, hasOutputChecks } from "./guardrails.js";
import { callModel } from "./model-call.js";
import { planRun } from "./planner.js";
import type { AgentTools, FinishRun, LoopDeps, RunOptions } from "./run-context.js";
import { RunControl } from "./run-control.js";
import { EventPublisher, emptyUsage, sumUsage } from "./run-events.js";
import { endAfterError } from "./run-failure.js";
import { type RunRow, runFinisher } from "./run-finish.js";
import { type BegunRun, runDeadline, takeRun } from "./run-start.js";
import type { RecordedStep, StepDetails } from "./run-store.js";
import { runToolStep } from "./tool-calls.js";
import { turnContext } from "./turn-context.js";

export type { AgentTools, FinishRun, LoopDeps, RunOptions } from "./run-context.js";
export { RunNotRecorded } from "./run-finish.js";

const ClientTools = z.array(ToolSpec).max(128);

/**
 * What a run does next, decided after each model step: answer (no tool calls, or calls of the
 * client's own tools, which go back to the client), or run the server's tools (delegation
 * included) and ask the model again. Budgets decide before each step whether one may start.
 */
export type NextStep =
  | { kind: "answer"; assistant: AssistantMessage }
  | { kind: "tools"; assistant: AssistantMessage; calls: NonNullable<AssistantMessage["tool_calls"]> };

export function nextStep(assistant: AssistantMessage, clientToolNames: ReadonlySet<string>): NextStep {
  const calls = assistant.tool_calls ?? [];
  if (calls.length === 0 || calls.some((call) => clientToolNames.has(call.function.name)))
    return { kind: "answer", assistant };
  return { kind: "tools", assistant, calls };
}

/**
 * Runs one agent run to its end: context from memory, model steps, parallel tool calls, budgets
 * and guardrails. Each finished step is journaled, so a redelivered run resumes where it stopped
 * without repeating finished model calls or side effects. Resolves with the final status; throws
 * only to hand the run back to the queue (worker draining, or a batch run to retry).
 */
export async function executeRun(
  deps: LoopDeps,
  request: RunRequest,
  options: RunOptions,
): Promise<RunStatus> {
  const taken = await takeRun(deps, request, options);
  if ("done" in taken) return taken.done;
  const { begun } = taken;
  const events = EventPublisher.forRun(deps.bus, request, begun.attempt);
  const agent = deps.agents[request.agent];
  const steps = begun.steps;
  const budget = agent ? new RunBudget(request, agent, begun.startedAt, steps) : undefined;
  const row: RunRow = (status, output, error) => ({
    request,
    status,
    attempt: begun.attempt,
    startedAt: begun.startedAt,
    steps: steps.length,
    usage: budget
      ? { ...budget.usage }
      : steps.reduce((sum, step) => sumUsage(sum, step.usage), emptyUsage()),
    costUsd: budget ? budget.costUsd : steps.reduce((sum, step) => sum + step.costUsd, 0),
    output,
    error,
  });
  const models = new Set<string>();
  const finish = runFinisher(deps, request, begun, events, row, models);

  const refused = refusal(request, agent, begun, steps.length);
  if (refused || !agent || !budget) return finish("failed", undefined, refused ?? unknownAgent(request));
  events.emit({ type: "run-started", agent: request.agent, attempt: begun.attempt });

  const control = new RunControl(deps.cancels, request.runId, options.signal, deps.drainGraceMs);
  const run: ActiveRun = {
    deps,
    request,
    options,
    agent,
    begun,
    events,
    budget,
    finish,
    control,
    row,
    steps,
    models,
    meta: callMeta(request, budget.timeLimit),
  };
  try {
    return await drive(run);
  } catch (error) {
    return await endAfterError(error, run);
  } finally {
    control.close();
  }
}

/** A run this worker holds, with everything its steps need. */
interface ActiveRun {
  deps: LoopDeps;
  request: RunRequest;
  options: RunOptions;
  agent: AgentConfig;
  begun: BegunRun;
  events: EventPublisher;
  budget: RunBudget;
  finish: FinishRun;
  control: RunControl;
  row: RunRow;
  steps: RecordedStep[];
  /** The models that answered this worker's steps (for the turn's log line). */
  models: Set<string>;
  meta: (requestId: string) => RequestMeta;
}

/** The prompt and tools of a run's turn, as its steps see them. */
interface Turn {
  input: ChatMessage[];
  messages: ChatMessage[];
  tools: ToolSpec[];
  agentTools: AgentTools;
  clientToolNames: ReadonlySet<string>;
  /** The agent as it executes (the strong tier after a fast-tier plan). */
  executor: AgentConfig;
}

/** The steps of a run from where it stands: a recorded answer is delivered, otherwise model steps until one answers. */
async function drive(run: ActiveRun): Promise<RunStatus> {
  const turn = await prepareTurn(run);
  // a final answer recorded before a crash is delivered, not asked for again
  const last = run.steps.at(-1);
  if (last && last.toolMessages.length === 0) return answer(run, turn, last.assistant, last.step, undefined);

  for (let stepIndex = run.steps.length; ; stepIndex++) {
    run.control.checkpoint();
    const blocked = run.budget.exhausted(stepIndex);
    if (blocked) return run.finish("budget_exceeded", undefined, blocked);
    const reply = await modelStep(run, turn, stepIndex);
    run.models.add(reply.model);
    const details: StepDetails = {
      model: reply.model,
      provider: reply.provider,
      latencyMs: reply.latencyMs,
      route: reply.route.reason,
      finishReason: reply.finishReason,
    };
    const next = nextStep(reply.message, turn.clientToolNames);
    switch (next.kind) {
      case "answer":
        return answer(run, turn, next.assistant, stepIndex, {
          usage: reply.usage,
          costUsd: reply.costUsd,
          details,
        });
      case "tools":
        await toolStep(run, turn, stepIndex, next.assistant, next.calls, reply, details);
        break;
    }
  }
}

/** Checked input, the client's tools, the agent's tools and the context (at once), and a plan if the agent plans. */
async function prepareTurn(run: ActiveRun): Promise<Turn> {
  const { deps, request, agent, steps, meta } = run;
  const input = checkInput(request.input, agent.guardrails);
  const parsedClientTools = ClientTools.safeParse(request.clientTools ?? []);
  if (!parsedClientTools.success)
    throw new RuntimeError("validation", "invalid client tools", { details: parsedClientTools.error.issues });
  const clientTools = parsedClientTools.data;
  const clientToolNames = new Set(clientTools.map((tool) => tool.function.name));
  const [agentTools, context] = await Promise.all([
    agent.tools.length > 0
      ? deps.toolSpecs(request.agent, agent.tools, request.tenant, runChannel(request))
      : Promise.resolve({ specs: [], sideEffects: false }),
    turnContext(deps.bus, request, agent, input, meta(`${request.runId}:context`), run.control.signal),
  ]);
  // a client-declared tool wins over a server tool of the same name: the client asked for its own
  const tools = [
    ...agentTools.specs.filter((tool) => !clientToolNames.has(tool.function.name)),
    ...(agent.delegates.length > 0 && !clientToolNames.has(DELEGATE_TOOL)
      ? [delegateSpec(agent.delegates, deps.agents)]
      : []),
    ...clientTools,
  ];
  const messages: ChatMessage[] = [...context];
  let executorTier = agent.tier;
  if (agent.planner) {
    // the plan is kept on the run's row
    await run.begun.recorded();
    const planned = await planRun({
      bus: deps.bus,
      store: deps.store,
      logger: deps.logger,
      runId: request.runId,
      meta: meta(`${request.runId}:plan`),
      input,
      toolNames: tools.map((tool) => tool.function.name),
      step: steps.length,
      events: run.events,
    });
    if (planned.spent) run.budget.spend(planned.spent);
    if (planned.instruction) {
      // a fast-tier plan, followed by a strong-tier executor
      executorTier = agent.tier ?? "strong";
      messages.splice(Math.max(1, messages.length - input.length), 0, planned.instruction);
    }
  }
  for (const step of steps) messages.push(step.assistant, ...step.toolMessages);
  const executor: AgentConfig = { ...agent, ...(executorTier ? { tier: executorTier } : {}) };
  return { input, messages, tools, agentTools, clientToolNames, executor };
}

/** One model call of the loop, its deltas relayed live unless output checks hold the answer back. */
async function modelStep(run: ActiveRun, turn: Turn, stepIndex: number): Promise<ModelChatReply> {
  const { deps, request, events, meta } = run;
  events.emit({ type: "step-started", step: stepIndex, kind: "model" });
  const reply = await callModel(
    deps.bus,
    {
      request,
      agent: turn.executor,
      messages: turn.messages,
      tools: turn.tools,
      sideEffects: turn.agentTools.sideEffects,
      step: stepIndex,
      meta: meta(`${request.runId}:${stepIndex}`),
      stream: request.stream && !hasOutputChecks(run.agent.guardrails) ? "live" : "off",
      clientToolNames: turn.clientToolNames,
      resumed: run.begun.attempt > 1,
    },
    events,
    run.control.signal,
  );
  run.budget.spend(reply);
  events.emit({
    type: "usage",
    step: stepIndex,
    model: reply.model,
    provider: reply.provider,
    usage: reply.usage,
    costUsd: reply.costUsd,
  });
  return reply;
}

/** Runs a step's server tools in parallel, then journals the step before the model sees the results. */
async function toolStep(
  run: ActiveRun,
  turn: Turn,
  stepIndex: number,
  assistant: AssistantMessage,
  calls: NonNullable<AssistantMessage["tool_calls"]>,
  reply: ModelChatReply,
  details: StepDetails,
): Promise<void> {
  const { deps, request, budget } = run;
  const { toolMessages, toolCost } = await runToolStep({
    deps,
    request,
    agent: run.agent,
    step: stepIndex,
    calls,
    meta: run.meta(`${request.runId}:${stepIndex}:tools`),
    remainingBudgetUsd: budget.remainingUsd,
    events: run.events,
    signal: run.control.signal,
    options: run.options,
  });
  budget.spendUsd(toolCost);
  const recorded: RecordedStep = {
    step: stepIndex,
    assistant,
    toolMessages,
    usage: reply.usage,
    costUsd: reply.costUsd + toolCost,
  };
  deps.failpoint("after-step-effects");
  run.steps.push(recorded);
  run.begun.superseded();
  await deps.journal.writeDurably(
    { run: run.row("running"), step: { recorded, details } },
    runDeadline(request),
    run.control.signal,
  );
  turn.messages.push(assistant, ...toolMessages);
}

/** Ends the run with an answer: output checks, then the final step, the turn and the finished state. */
function answer(
  run: ActiveRun,
  turn: Turn,
  assistant: AssistantMessage,
  stepIndex: number,
  fresh: FinalAnswer["fresh"],
): Promise<RunStatus> {
  return finalAnswer({
    deps: run.deps,
    request: run.request,
    agent: turn.executor,
    input: turn.input,
    messages: turn.messages,
    steps: run.steps,
    stepIndex,
    assistant,
    fresh,
    clientToolNames: turn.clientToolNames,
    buffered: run.request.stream && hasOutputChecks(run.agent.guardrails),
    meta: run.meta,
    events: run.events,
    signal: run.control.signal,
    spend: (spent) => run.budget.spend(spent),
    finish: run.finish,
  });
}

/** Why a run may not start at all: its agent is unknown or not this tenant's, or it waited past its deadline. */
function refusal(
  request: RunRequest,
  agent: AgentConfig | undefined,
  begun: BegunRun,
  recordedSteps: number,
): WireError | undefined {
  if (!agent) return unknownAgent(request);
  if (!agentOpenTo(agent, request.tenant)) {
    return {
      code: "forbidden",
      message: `agent "${request.agent}" is not available to this tenant`,
      retryable: false,
    };
  }
  if (recordedSteps === 0 && Date.now() >= request.deadline) {
    return {
      code: "timeout",
      message: `the run waited ${Math.max(0, begun.startedAt - request.createdAt)} ms in the queue and its deadline passed before it started`,
      retryable: false,
    };
  }
  return undefined;
}

function unknownAgent(request: RunRequest): WireError {
  return { code: "not_found", message: `unknown agent "${request.agent}"`, retryable: false };
}

/** The meta of each call a run makes: its tenant, user, thread, lane and time limit travel with it. */
function callMeta(request: RunRequest, timeLimit: number): (requestId: string) => RequestMeta {
  return (requestId) => ({
    v: 1,
    tenant: request.tenant,
    requestId,
    runId: request.runId,
    agent: request.agent,
    ...(request.userId ? { userId: request.userId } : {}),
    ...(request.threadId ? { threadId: request.threadId } : {}),
    // the run's lane travels with every call, so the model proxy and the tool executor serve
    // interactive work first too
    priority: request.priority,
    deadline: timeLimit,
  });
}
