import type { AgentConfig } from "@agent-runtime/config";
import type { RunRequest, ToolCall, ToolExecReply, ToolSpec } from "@agent-runtime/contracts";
import { buildRunRequest, parseToolArguments, runChannel, textOf } from "@agent-runtime/contracts";
import { z } from "zod";
import type { LoopDeps, RunOptions } from "./run-context.js";

export const DELEGATE_TOOL = "delegate";
const MAX_DEPTH = 3;

const DelegateArguments = z.object({ agent: z.string().min(1), task: z.string().min(1).max(20_000) });

/** The `delegate` tool as the model sees it: which specialists it may hand a subtask to. */
export function delegateSpec(delegates: string[], agents: Record<string, AgentConfig>): ToolSpec {
  return {
    type: "function",
    function: {
      name: DELEGATE_TOOL,
      description: `Hands a self-contained subtask to a specialist agent and returns its answer. Specialists: ${delegates
        .map((name) => `${name} (${agents[name]?.description || "no description"})`)
        .join("; ")}.`,
      parameters: {
        type: "object",
        properties: {
          agent: { type: "string", enum: delegates, description: "which specialist" },
          task: { type: "string", description: "the subtask, with everything the specialist needs to know" },
        },
        required: ["agent", "task"],
        additionalProperties: false,
      },
    },
  };
}

/**
 * Runs a child run inline (its own run record, budget and events; cost rolled
 * up to the parent through the tool result). Inline execution cannot deadlock
 * when every worker slot holds a parent. A resumed parent finds a finished
 * child by its deterministic id and does not run it again.
 */
export async function delegate(
  deps: LoopDeps,
  parent: RunRequest,
  agent: AgentConfig,
  call: ToolCall,
  step: number,
  /** The call's place in the model's answer: names the child run, so a re-made step finds the same child. */
  position: number,
  remainingBudgetUsd: number,
  options: RunOptions,
): Promise<ToolExecReply> {
  const started = performance.now();
  const reply = (status: ToolExecReply["status"], content: string, costUsd = 0): ToolExecReply => ({
    callId: call.id,
    name: DELEGATE_TOOL,
    status,
    content,
    cached: false,
    replayed: false,
    truncated: false,
    latencyMs: performance.now() - started,
    costUsd,
  });
  const raw = parseToolArguments(call.function.arguments);
  if (!raw.ok) return reply("invalid_arguments", `error: invalid arguments: ${raw.reason}`);
  const parsed = DelegateArguments.safeParse(raw.value);
  if (!parsed.success)
    return reply(
      "invalid_arguments",
      `error: invalid arguments: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  const args = parsed.data;
  if (!agent.delegates.includes(args.agent) || !deps.agents[args.agent]) {
    return reply(
      "invalid_arguments",
      `error: "${args.agent}" is not a specialist you may delegate to (${agent.delegates.join(", ")})`,
    );
  }
  if ((parent.runId.match(/:child:/g)?.length ?? 0) >= MAX_DEPTH) {
    return reply("forbidden", `error: delegation deeper than ${MAX_DEPTH} levels is not allowed`);
  }
  if (remainingBudgetUsd <= 0) return reply("error", "error: no budget left to delegate");
  const childId = `${parent.runId}:child:${step}:${position}`;
  const specialist = deps.agents[args.agent]!;
  // the child has its agent's time, never past its parent's deadline; it keeps the parent's door
  // and its deep-analysis opt-in
  const child = buildRunRequest({
    runId: childId,
    tenant: parent.tenant,
    agent: args.agent,
    input: [{ role: "user", content: args.task }],
    userId: parent.userId,
    priority: parent.priority,
    source: "delegate",
    channel: runChannel(parent),
    timeoutMs: specialist.timeBudgetMs,
    notAfter: parent.deadline,
    parentRunId: parent.runId,
    deepAnalysis: parent.deepAnalysis,
    budget: { costUsd: Math.min(remainingBudgetUsd, specialist.costBudgetUsd) },
  });
  const status = await deps.runChild(child, options);
  const record = await deps.store.get(parent.tenant, childId);
  const cost = record?.costUsd ?? 0;
  if (status !== "completed" || !record?.output) {
    const reason = record?.error?.message ?? status;
    return reply("error", `error: ${args.agent} could not finish the subtask (${status}): ${reason}`, cost);
  }
  return reply("ok", textOf(record.output.content ?? ""), cost);
}
