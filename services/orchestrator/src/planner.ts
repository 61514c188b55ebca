import type { Bus } from "@agent-runtime/bus";
import {
  type ChatMessage,
  Endpoints,
  lastUserText,
  type ModelChatRequest,
  type RequestMeta,
  type TokenUsage,
  textOf,
} from "@agent-runtime/contracts";
import type { Logger } from "@agent-runtime/telemetry";
import { z } from "zod";
import type { EventPublisher } from "./run-events.js";
import type { RunStore } from "./run-store.js";

export const Plan = z.object({
  steps: z.array(z.string().min(1).max(500)).min(1).max(8),
});
export type Plan = z.infer<typeof Plan>;

export interface PlanDecision {
  plan: Plan | null;
  reason: string;
  usage?: TokenUsage;
  costUsd: number;
}

/** Requests that are short and single-sentence are answered without a plan. */
export function needsPlan(input: readonly ChatMessage[]): { needed: boolean; reason: string } {
  const text = lastUserText(input);
  const sentences = text.split(/[.!?\n]+/).filter((part) => part.trim().length > 0).length;
  if (text.length < 120 && sentences <= 1)
    return { needed: false, reason: "simple request: planning skipped" };
  return { needed: true, reason: `multi-part request (${sentences} sentences, ${text.length} characters)` };
}

/** The model call that asks for a plan: routed as task `plan` (the fast tier by default), deterministic, JSON only. */
export function planRequest(
  meta: RequestMeta,
  input: readonly ChatMessage[],
  tools: readonly string[],
): ModelChatRequest {
  return {
    meta,
    // the route decides the tier (routine by default: the fast tier)
    task: "plan",
    temperature: 0,
    responseFormat: { type: "json_object" },
    maxTokens: 400,
    messages: [
      {
        role: "system",
        content: `Break the user's request into at most 8 short steps for an assistant that can use these tools: ${tools.join(", ") || "none"}. Answer only JSON: {"steps": ["..."]}.`,
      },
      ...input,
    ],
  };
}

/** Reads the planner's answer: a valid plan, or no plan and why (invalid JSON, or a plan that fails validation). */
export function parsePlan(raw: string): { plan: Plan } | { plan: null; reason: string } {
  let parsed: ReturnType<typeof Plan.safeParse>;
  try {
    parsed = Plan.safeParse(JSON.parse(raw));
  } catch {
    return { plan: null, reason: "planner answered with invalid JSON: executing without a plan" };
  }
  if (!parsed.success)
    return { plan: null, reason: "planner's plan failed validation: executing without a plan" };
  return { plan: parsed.data };
}

/** Asks the model for a short structured plan when the request needs one; an invalid plan is dropped, never fatal. */
export async function makePlan(
  bus: Bus,
  meta: RequestMeta,
  input: readonly ChatMessage[],
  tools: string[],
): Promise<PlanDecision> {
  const check = needsPlan(input);
  if (!check.needed) return { plan: null, reason: check.reason, costUsd: 0 };
  const reply = await bus.request(Endpoints.modelChat, planRequest(meta, input, tools));
  const parsed = parsePlan(textOf(reply.message.content ?? ""));
  const reason = parsed.plan === null ? parsed.reason : check.reason;
  return { plan: parsed.plan, reason, usage: reply.usage, costUsd: reply.costUsd };
}

/** The executor's instruction for a recorded plan, its steps numbered; none when the record holds no valid plan. */
export function planInstruction(recorded: unknown): ChatMessage | undefined {
  const plan = Plan.safeParse(recorded);
  if (!plan.success) return undefined;
  return {
    role: "system",
    content: `Follow this plan:\n${plan.data.steps.map((step, index) => `${index + 1}. ${step}`).join("\n")}`,
  };
}

/**
 * The planning step of a planner agent: decided once per run and recorded (plan and reason), so a
 * resumed run follows the same plan without asking again. Returns the plan as a system message
 * for the executor (none when planning was skipped or failed) and what the planner cost.
 */
export async function planRun(context: {
  bus: Bus;
  store: RunStore;
  logger: Logger;
  runId: string;
  meta: RequestMeta;
  input: readonly ChatMessage[];
  toolNames: string[];
  step: number;
  events: EventPublisher;
}): Promise<{ instruction?: ChatMessage; spent?: { usage: TokenUsage; costUsd: number } }> {
  const { store, runId } = context;
  let decision = await store.loadPlan(runId);
  let spent: { usage: TokenUsage; costUsd: number } | undefined;
  if (!decision.decided) {
    context.events.emit({ type: "step-started", step: context.step, kind: "plan" });
    const made = await makePlan(context.bus, context.meta, context.input, context.toolNames);
    await store.savePlan(runId, made.plan, made.reason, made.costUsd, made.usage);
    if (made.usage) spent = { usage: made.usage, costUsd: made.costUsd };
    decision = { decided: true, plan: made.plan, reason: made.reason };
  }
  const instruction = planInstruction(decision.plan);
  context.logger.debug(
    { runId, planned: instruction !== undefined, reason: decision.reason },
    "planning decision",
  );
  if (!instruction) return spent ? { spent } : {};
  return spent ? { instruction, spent } : { instruction };
}
