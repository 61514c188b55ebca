import type { Bus } from "@agent-runtime/bus";
import { type AgentConfig, chooseAgentVariant } from "@agent-runtime/config";
import { type ChatMessage, Endpoints, type RequestMeta, type RunRequest } from "@agent-runtime/contracts";

/**
 * The prompt a turn starts from. A turn of a thread made for it, with nothing to retrieve, has no
 * history: when its system prompt and input fit the budget whatever the tokenizer (a token is at
 * least one byte of the JSON that carries it), the prompt is built here and memory is not asked.
 * Every other turn gets its context from memory (history, summary, retrieval, budget trimming).
 * An agent with variants speaks with its variant's system prompt (the variant the model proxy
 * routes and records the turn's model calls under).
 */
export async function turnContext(
  bus: Bus,
  request: RunRequest,
  agent: AgentConfig,
  input: ChatMessage[],
  meta: RequestMeta,
): Promise<ChatMessage[]> {
  const systemPrompt = chooseAgentVariant(request.agent, agent, meta)?.systemPrompt ?? agent.systemPrompt;
  const system: ChatMessage[] = systemPrompt ? [{ role: "system", content: systemPrompt }] : [];
  const noHistory = request.newThread === true || !request.threadId;
  if (noHistory && !agent.memory.retrieval) {
    const messages = [...system, ...input];
    if (Buffer.byteLength(JSON.stringify(messages)) <= agent.memory.contextBudgetTokens) return messages;
  }
  const context = await bus.request(Endpoints.memoryContext, {
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
  });
  return context.messages;
}
