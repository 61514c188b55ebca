import type { AgentConfig } from "@agent-runtime/config";
import {
  type AssistantMessage,
  type ChatMessage,
  type RequestMeta,
  type RunRequest,
  type RunStatus,
  RuntimeError,
  type TokenUsage,
  textOf,
} from "@agent-runtime/contracts";
import { checkOutput, structuredOutputProblems } from "./guardrails.js";
import { callModel, STEP_SEPARATOR } from "./model-call.js";
import type { FinishRun, LoopDeps } from "./run-context.js";
import { type EventPublisher, sumUsage } from "./run-events.js";
import type { RecordedStep, StepDetails } from "./run-store.js";
import { journalTurn } from "./thread-turns.js";

export interface FinalAnswer {
  deps: LoopDeps;
  request: RunRequest;
  /** The agent as it executes (tier after planning). */
  agent: AgentConfig;
  /** The checked input (what the thread stores). */
  input: ChatMessage[];
  /** What the model saw for this step. */
  messages: ChatMessage[];
  steps: RecordedStep[];
  stepIndex: number;
  assistant: AssistantMessage;
  /** The step's model call, or undefined when the answer was recorded before a crash. */
  fresh: { usage: TokenUsage; costUsd: number; details: StepDetails } | undefined;
  clientToolNames: ReadonlySet<string>;
  /** Deltas were held back (output checks): the checked answer goes out as one delta. */
  buffered: boolean;
  meta: (requestId: string) => RequestMeta;
  events: EventPublisher;
  signal: AbortSignal;
  /** Adds a call's usage and cost to the run's totals. */
  spend: (spent: { usage: TokenUsage; costUsd: number }) => void;
  finish: FinishRun;
}

/**
 * Ends a run with the model's answer: output checks (structured output with one repair attempt,
 * numeric bounds, policy filters) before the user sees anything, then the last step, the turn in
 * memory and the run's status, written together. An answer that calls the client's own tools
 * goes back with only those calls (the server's tools of a mixed turn are not run).
 */
export async function finalAnswer(answer: FinalAnswer): Promise<RunStatus> {
  const { request, agent, events, stepIndex } = answer;
  const rules = agent.guardrails;
  const clientCalls = (answer.assistant.tool_calls ?? []).filter((call) =>
    answer.clientToolNames.has(call.function.name),
  );
  let assistant: AssistantMessage =
    clientCalls.length > 0 ? { ...answer.assistant, tool_calls: clientCalls } : answer.assistant;
  let usage = answer.fresh?.usage;
  let costUsd = answer.fresh?.costUsd ?? 0;

  if (answer.fresh) {
    let text = textOf(assistant.content);
    let problems = clientCalls.length === 0 ? structuredOutputProblems(text, rules) : [];
    if (problems.length > 0) {
      // one repair attempt: the model sees what is wrong with its answer
      const repair = await callModel(
        answer.deps.bus,
        {
          request,
          agent,
          messages: [
            ...answer.messages,
            assistant,
            {
              role: "user",
              content: `Your answer is invalid: ${problems.join("; ")}. Reply again with only the corrected JSON.`,
            },
          ],
          tools: [],
          sideEffects: false,
          step: stepIndex,
          meta: answer.meta(`${request.runId}:${stepIndex}:repair`),
          stream: "off",
          clientToolNames: answer.clientToolNames,
        },
        events,
        answer.signal,
      );
      answer.spend(repair);
      usage = sumUsage(usage ?? repair.usage, repair.usage);
      costUsd += repair.costUsd;
      text = textOf(repair.message.content);
      problems = structuredOutputProblems(text, rules);
      if (problems.length > 0) {
        throw new RuntimeError(
          "guardrail_blocked",
          `answer failed the output checks after one repair: ${problems.slice(0, 5).join("; ")}`,
          { details: { rule: "structured_output", problems } },
        );
      }
      assistant = { ...assistant, content: repair.message.content };
    }
    const checked = checkOutput(text, rules);
    if (checked !== textOf(assistant.content)) assistant = { ...assistant, content: checked };
  }

  if (answer.buffered) {
    // only the checked answer is streamed, as one delta (sent again by a worker that took the run over)
    const text = textOf(assistant.content);
    events.emit({
      type: "delta",
      step: stepIndex,
      ...(text ? { content: text, offset: 0 } : {}),
      ...(clientCalls.length > 0
        ? {
            toolCalls: clientCalls.map((call, index) => ({
              index,
              id: call.id,
              name: call.function.name,
              arguments: call.function.arguments,
            })),
          }
        : {}),
    });
  }

  const finishReason =
    clientCalls.length > 0
      ? "tool_calls"
      : (answer.fresh?.details.finishReason ?? answer.steps.at(-1)?.finishReason ?? "stop");
  let finalStep: { recorded: RecordedStep; details: StepDetails } | undefined;
  if (answer.fresh && usage) {
    const recorded: RecordedStep = {
      step: stepIndex,
      assistant,
      toolMessages: [],
      usage,
      costUsd,
      finishReason,
    };
    answer.steps.push(recorded);
    finalStep = { recorded, details: answer.fresh.details };
  }
  const output = streamedOutput(answer, assistant);
  const turn = answer.steps.flatMap((step) => [step.assistant, ...step.toolMessages]);
  const appended = journalTurn(
    answer.deps.bus,
    answer.deps.logger,
    request,
    answer.input,
    turn,
    answer.meta(`${request.runId}:append`),
  );
  return answer.finish("completed", output, undefined, finishReason, appended, finalStep);
}

/**
 * The run's output. In a live stream the text of each step that went on to call tools was streamed
 * before the answer (each followed by a separator, see StepRelay): it is part of the output, so what
 * the client was streamed is exactly what the run says it answered.
 */
function streamedOutput(answer: FinalAnswer, assistant: AssistantMessage): AssistantMessage {
  if (!answer.request.stream || answer.buffered) return assistant;
  const before = answer.steps
    .filter((step) => step.step < answer.stepIndex && step.toolMessages.length > 0)
    .map((step) => textOf(step.assistant.content))
    .filter((text) => text.length > 0);
  if (before.length === 0) return assistant;
  const preamble = before.map((text) => `${text}${STEP_SEPARATOR}`).join("");
  return { ...assistant, content: `${preamble}${textOf(assistant.content)}` };
}
