import { randomUUID } from "node:crypto";
import type { Bus } from "@agent-runtime/bus";
import type { AgentConfig } from "@agent-runtime/config";
import {
  type AssistantMessage,
  type ChatMessage,
  type RequestMeta,
  type RunFinishedEvent,
  type RunRequest,
  type RunStatus,
  RuntimeError,
  runChannel,
  ToolSpec,
  toWireError,
  type WireError,
} from "@agent-runtime/contracts";
import type { Logger } from "@agent-runtime/telemetry";
import { z } from "zod";
import { DELEGATE_TOOL, delegateSpec } from "./delegation.js";
import type { Failpoint } from "./failpoints.js";
import { type FinalAnswer, finalAnswer } from "./final-answer.js";
import { checkInput, hasOutputChecks } from "./guardrails.js";
import type { Journal, JournalEntry, RunState, Written } from "./journal.js";
import { callModel } from "./model-call.js";
import { planRun } from "./planner.js";
import { type CancelWatch, RunControl, RunHandedOff } from "./run-control.js";
import { addUsage, EventPublisher, emptyUsage, finishedEventSent } from "./run-events.js";
import { announceStored, runDeadline, takeRun } from "./run-start.js";
import type { RecordedStep, RunStore, StepDetails } from "./run-store.js";
import { runToolStep } from "./tool-calls.js";
import { turnContext } from "./turn-context.js";

export interface AgentTools {
  specs: ToolSpec[];
  /** Whether any of them has side effects (the model's answers are then never cached). */
  sideEffects: boolean;
}

export interface LoopDeps {
  bus: Bus;
  store: RunStore;
  /** Where each fact of a run is written (batched across runs). */
  journal: Journal;
  /** Cancel notices of the runs this worker holds. */
  cancels: CancelWatch;
  /** Fault tests: crashes the worker at a named point (a no-op unless armed). */
  failpoint: (name: Failpoint) => void;
  logger: Logger;
  agents: Record<string, AgentConfig>;
  toolSpecs: (agent: string, names: string[], tenant: string, channel?: string) => Promise<AgentTools>;
  /** How long a draining worker lets a step in flight finish before it hands the run off. */
  drainGraceMs: number;
}

export interface RunOptions {
  /** Aborts when the worker drains: the run stops at its next step and is handed to another worker. */
  signal: AbortSignal;
  deliveryCount: number;
  finalAttempt: boolean;
}

const ClientTools = z.array(ToolSpec).max(128);

/**
 * Runs one agent run to its end: context from memory, model steps, parallel tool calls, budgets
 * and guardrails. Each finished step is recorded, so a redelivered run resumes where it stopped
 * without repeating finished model calls or side effects. Resolves with the final status; throws
 * only to hand the run back to the queue (worker draining, or a batch run to retry).
 */
export async function executeRun(
  deps: LoopDeps,
  request: RunRequest,
  options: RunOptions,
): Promise<RunStatus> {
  const { bus, journal } = deps;
  const taken = await takeRun(deps, request, options);
  if ("done" in taken) return taken.done;
  const { begun } = taken;
  const events = EventPublisher.forRun(bus, request, begun.attempt);
  const agent = deps.agents[request.agent];
  const usage = emptyUsage();
  let cost = 0;
  const steps = begun.steps;
  for (const step of steps) {
    addUsage(usage, step.usage);
    cost += step.costUsd;
  }
  /** The run's row as this worker knows it (totals include every recorded step). */
  const state = (status: RunStatus, output?: AssistantMessage, error?: WireError): RunState => ({
    request,
    status,
    attempt: begun.attempt,
    startedAt: begun.startedAt,
    steps: steps.length,
    usage: { ...usage },
    costUsd: cost,
    output,
    error,
  });
  const finishToken = `${begun.attempt}:${randomUUID()}`;
  const finish: FinishRun = async (status, output, error, finishReason, persisted, finalStep) => {
    let written: Written;
    try {
      // the final step and the finished state are one write
      const entry: JournalEntry = {
        run: state(status, output, error),
        finishToken,
        ...(finalStep ? { step: finalStep } : {}),
      };
      begun.superseded();
      [written] = await Promise.all([journal.writeDurably(entry, runDeadline(request)), persisted]);
    } catch (cause) {
      const wire = toWireError(cause);
      if (wire.code !== "validation") {
        // the journal stayed unreachable to the deadline: the client hears it now; the run is handed
        // back so a later delivery records how it ended
        events.emit({
          type: "run-finished",
          status: "failed",
          usage,
          costUsd: cost,
          steps: steps.length,
          error: wire,
          ...(request.threadId ? { threadId: request.threadId } : {}),
        });
        throw new RunNotRecorded(request.runId, cause);
      }
      // what the run produced cannot be stored: it fails with that reason, and its row says so
      status = "failed";
      output = undefined;
      finishReason = undefined;
      error = wire;
      written = await journal
        .writeDurably({ run: state(status, undefined, wire), scrub: true, finishToken }, runDeadline(request))
        .catch((again: unknown) => {
          deps.logger.error({ err: again, runId: request.runId }, "could not record a failed run");
          return { status, finishedBy: finishToken };
        });
    }
    deps.failpoint("after-final-write");
    const final = written.status;
    if (written.finishedBy !== finishToken && final !== "cancelled") {
      // another worker holding the same run (a redelivery racing this one) ended it: it announces
      // the outcome, unless it never got to (then the stored outcome goes out, once)
      deps.logger.info({ runId: request.runId, status: final }, "run already ended by another worker");
      if (!(await finishedEventSent(bus, request.runId))) await announceStored(deps, request, begun.attempt);
      return final;
    }
    const event: Omit<RunFinishedEvent, "runId" | "seq" | "ts"> = {
      type: "run-finished",
      status: final,
      ...(output && final === status ? { output } : {}),
      ...(finishReason && final === status ? { finishReason } : {}),
      usage,
      costUsd: cost,
      steps: steps.length,
      ...(final !== status
        ? { error: { code: "cancelled", message: "run was cancelled", retryable: false } }
        : error
          ? { error }
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
  if (steps.length === 0 && Date.now() >= request.deadline) {
    return finish("failed", undefined, {
      code: "timeout",
      message: `the run waited ${Math.max(0, begun.startedAt - request.createdAt)} ms in the queue and its deadline passed before it started`,
      retryable: false,
    });
  }
  events.emit({ type: "run-started", agent: request.agent, attempt: begun.attempt });

  const control = new RunControl(deps.cancels, request.runId, options.signal, deps.drainGraceMs);
  const { signal, checkpoint } = control;
  const timeLimit = Math.min(
    request.deadline,
    begun.startedAt + Math.min(request.budget?.timeMs ?? agent.timeBudgetMs, agent.timeBudgetMs),
  );
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
    // the run's lane travels with every call, so the model proxy and the tool executor serve
    // interactive work first too
    priority: request.priority,
    deadline: timeLimit,
  });
  const spent = () => ({ spentUsd: cost, usage, steps: steps.length });

  try {
    const input = checkInput(request.input, agent.guardrails);
    const parsedClientTools = ClientTools.safeParse(request.clientTools ?? []);
    if (!parsedClientTools.success)
      throw new RuntimeError("validation", "invalid client tools", {
        details: parsedClientTools.error.issues,
      });
    const clientTools = parsedClientTools.data;
    const clientToolNames = new Set(clientTools.map((tool) => tool.function.name));
    const [agentTools, context] = await Promise.all([
      agent.tools.length > 0
        ? deps.toolSpecs(request.agent, agent.tools, request.tenant, runChannel(request))
        : Promise.resolve({ specs: [], sideEffects: false }),
      turnContext(bus, request, agent, input, meta(`${request.runId}:context`)),
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
      await begun.recorded();
      const planned = await planRun({
        bus,
        store: deps.store,
        logger: deps.logger,
        runId: request.runId,
        meta: meta(`${request.runId}:plan`),
        input,
        toolNames: tools.map((tool) => tool.function.name),
        step: steps.length,
        events,
      });
      if (planned.spent) {
        addUsage(usage, planned.spent.usage);
        cost += planned.spent.costUsd;
      }
      if (planned.instruction) {
        // a fast-tier plan, followed by a strong-tier executor
        executorTier = agent.tier ?? "strong";
        messages.splice(Math.max(1, messages.length - input.length), 0, planned.instruction);
      }
    }
    for (const step of steps) messages.push(step.assistant, ...step.toolMessages);
    const executor: AgentConfig = { ...agent, ...(executorTier ? { tier: executorTier } : {}) };
    const answer = (assistant: AssistantMessage, stepIndex: number, fresh: FinalAnswer["fresh"]) =>
      finalAnswer({
        deps,
        request,
        agent: executor,
        input,
        messages,
        steps,
        stepIndex,
        assistant,
        fresh,
        clientToolNames,
        buffered: request.stream && hasOutputChecks(agent.guardrails),
        meta,
        events,
        signal,
        spend: (step) => {
          addUsage(usage, step.usage);
          cost += step.costUsd;
        },
        finish,
      });

    // a final answer recorded before a crash is delivered, not asked for again
    const last = steps.at(-1);
    if (last && last.toolMessages.length === 0) return await answer(last.assistant, last.step, undefined);

    for (let stepIndex = steps.length; ; stepIndex++) {
      checkpoint();
      if (stepIndex >= maxSteps) {
        return finish("budget_exceeded", undefined, {
          code: "budget_exceeded",
          message: `stopped after ${maxSteps} steps without a final answer`,
          retryable: false,
          details: { budget: "steps", limit: maxSteps, ...spent() },
        });
      }
      if (cost >= costLimit) {
        return finish("budget_exceeded", undefined, {
          code: "budget_exceeded",
          message: `spent $${cost.toFixed(6)} of a $${costLimit} budget`,
          retryable: false,
          details: { budget: "cost", limitUsd: costLimit, ...spent() },
        });
      }
      if (Date.now() >= timeLimit) {
        return finish("budget_exceeded", undefined, {
          code: "budget_exceeded",
          message: `time budget of ${timeLimit - begun.startedAt} ms used up`,
          retryable: false,
          details: { budget: "time", limitMs: timeLimit - begun.startedAt, ...spent() },
        });
      }
      events.emit({ type: "step-started", step: stepIndex, kind: "model" });
      const reply = await callModel(
        bus,
        {
          request,
          agent: executor,
          messages,
          tools,
          sideEffects: agentTools.sideEffects,
          step: stepIndex,
          meta: meta(`${request.runId}:${stepIndex}`),
          stream: request.stream && !hasOutputChecks(agent.guardrails) ? "live" : "off",
          clientToolNames,
          resumed: begun.attempt > 1,
        },
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
      const details: StepDetails = {
        model: reply.model,
        provider: reply.provider,
        latencyMs: reply.latencyMs,
        route: reply.route.reason,
        finishReason: reply.finishReason,
      };
      const record = (toolMessages: ChatMessage[], toolCost: number): RecordedStep => ({
        step: stepIndex,
        assistant,
        toolMessages,
        usage: reply.usage,
        costUsd: reply.costUsd + toolCost,
      });

      if (calls.length === 0 || calls.some((call) => clientToolNames.has(call.function.name))) {
        return await answer(assistant, stepIndex, { usage: reply.usage, costUsd: reply.costUsd, details });
      }

      const { toolMessages, toolCost } = await runToolStep({
        deps,
        request,
        agent,
        step: stepIndex,
        calls,
        meta: meta(`${request.runId}:${stepIndex}:tools`),
        remainingBudgetUsd: Math.max(0, costLimit - cost),
        events,
        signal,
        options,
      });
      cost += toolCost;
      const recorded = record(toolMessages, toolCost);
      deps.failpoint("after-step-effects");
      steps.push(recorded);
      begun.superseded();
      await journal.writeDurably(
        { run: state("running"), step: { recorded, details } },
        runDeadline(request),
        signal,
      );
      messages.push(assistant, ...toolMessages);
    }
  } catch (error) {
    // its end could not be journaled and its client was told: the run goes back to the queue as is
    if (error instanceof RunNotRecorded) throw error;
    const wire = toWireError(error);
    // a call abandoned downstream because the time ran out is a time outcome, not a cancel
    const timeUp = Date.now() >= timeLimit - 10;
    if (control.cancelled || (wire.code === "cancelled" && !timeUp)) {
      return finish("cancelled", undefined, {
        code: "cancelled",
        message: "run was cancelled",
        retryable: false,
      });
    }
    if (error instanceof RunHandedOff || options.signal.aborted) {
      // recorded steps stay; the redelivered run resumes from them on another worker
      deps.logger.info({ runId: request.runId, steps: steps.length }, "run handed off (worker draining)");
      throw error instanceof RunHandedOff ? error : new RunHandedOff(request.runId);
    }
    if (
      timeUp &&
      ["timeout", "deadline_exceeded", "cancelled", "upstream", "unavailable"].includes(wire.code)
    ) {
      // the agent's time budget ran out inside a call: a budget outcome; the run's own deadline
      // (what its client waits for) is a deadline outcome
      if (timeLimit < request.deadline) {
        return finish("budget_exceeded", undefined, {
          code: "budget_exceeded",
          message: `time budget of ${timeLimit - begun.startedAt} ms used up (${wire.message})`,
          retryable: false,
          details: { budget: "time", limitMs: timeLimit - begun.startedAt, ...spent() },
        });
      }
      return finish("failed", undefined, {
        code: "deadline_exceeded",
        message: `the run's deadline passed before it finished (${wire.message})`,
        retryable: false,
        details: spent(),
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
    control.close();
  }
}

/** A run's end could not be journaled before its deadline (its client has been told it failed). */
export class RunNotRecorded extends RuntimeError {
  constructor(runId: string, cause: unknown) {
    super("unavailable", `the end of run ${runId} could not be journaled; a later delivery records it`, {
      retryable: true,
      retryAfterMs: 5000,
      cause,
    });
  }
}

export type FinishRun = (
  status: RunStatus,
  output: AssistantMessage | undefined,
  error: WireError | undefined,
  finishReason?: string,
  /** Writes that must land before the client hears the run is over (they run alongside the final write). */
  persisted?: Promise<unknown>,
  /** The final step, written in the same entry as the finished state. */
  finalStep?: JournalEntry["step"],
) => Promise<RunStatus>;
