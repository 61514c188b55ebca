import type { Bus } from "@agent-runtime/bus";
import { type AgentConfig, chooseAgentVariant } from "@agent-runtime/config";
import {
  type ChatMessage,
  Endpoints,
  type RequestMeta,
  type RunRequest,
  retryUntilDeadline,
  toWireError,
} from "@agent-runtime/contracts";

/** How long before the run's time limit memory stops being asked again. */
const CONTEXT_RETRY_MARGIN_MS = 2000;

/**
 * The prompt a turn starts from. A turn of a thread made for it, with nothing to retrieve, has no
 * history: when its system prompt and input fit the budget whatever the tokenizer (a token is at
 * least one byte of the JSON that carries it), the prompt is built here and memory is not asked.
 * Every other turn gets its context from memory (history, summary, retrieval, budget trimming);
 * while memory answers with a retryable error (its database restarting, say) it is asked again
 * with backoff, until two seconds before the run's time limit. An agent with variants speaks with its variant's
 * system prompt (the variant the model proxy routes and records the turn's model calls under).
 */
export async function turnContext(
  bus: Bus,
  request: RunRequest,
  agent: AgentConfig,
  input: ChatMessage[],
  meta: RequestMeta,
  signal?: AbortSignal,
): Promise<ChatMessage[]> {
  const systemPrompt = turnSystemPrompt(request, agent, meta);
  const local = promptWithoutMemory(request, agent, systemPrompt, input);
  if (local) return local;
  const ask = () =>
    bus.request(
      Endpoints.memoryContext,
      {
        meta,
        ...(request.threadId ? { threadId: request.threadId } : {}),
        agent: request.agent,
        systemPrompt,
        input,
        budgetTokens: agent.memory.contextBudgetTokens,
        retrieval: agent.memory.retrieval,
        scope: agent.memory.scope,
        ...(request.userId ? { userId: request.userId } : {}),
        // the context is counted with the target model's tokenizer when the model is known
        ...((request.model ?? agent.model) ? { model: request.model ?? agent.model } : {}),
      },
      signal ? { signal } : {},
    );
  const context = await retryUntilDeadline(ask, {
    // stops in time for the run to end with memory's error before its deadline, not at it
    deadline: meta.deadline - CONTEXT_RETRY_MARGIN_MS,
    baseMs: 100,
    maxMs: 1000,
    signal,
    isPermanent: (error) => !toWireError(error).retryable,
    retryAfterMs: (error) => Math.min(toWireError(error).retryAfterMs ?? 0, 1000),
  });
  return context.messages;
}

/** The system prompt a turn speaks with: its agent variant's when the variant has one, else the agent's. */
export function turnSystemPrompt(
  request: Pick<RunRequest, "agent">,
  agent: AgentConfig,
  meta: RequestMeta,
): string | undefined {
  return chooseAgentVariant(request.agent, agent, meta)?.systemPrompt ?? agent.systemPrompt;
}

/**
 * The prompt of a turn that needs nothing from memory: a turn without history (a new thread, or
 * none) whose agent does not retrieve, and whose system prompt and input fit the context budget
 * counted in bytes of JSON (never fewer than its tokens). Undefined when memory builds the context.
 */
export function promptWithoutMemory(
  request: Pick<RunRequest, "newThread" | "threadId">,
  agent: AgentConfig,
  systemPrompt: string | undefined,
  input: readonly ChatMessage[],
): ChatMessage[] | undefined {
  const noHistory = request.newThread === true || !request.threadId;
  if (!noHistory || agent.memory.retrieval) return undefined;
  const system: ChatMessage[] = systemPrompt ? [{ role: "system", content: systemPrompt }] : [];
  const messages = [...system, ...input];
  return Buffer.byteLength(JSON.stringify(messages)) <= agent.memory.contextBudgetTokens
    ? messages
    : undefined;
}
