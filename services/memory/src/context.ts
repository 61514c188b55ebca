import type {
  ChatMessage,
  MemoryContextReply,
  MemoryContextRequest,
  MemoryHit,
} from "@agent-runtime/contracts";
import type { ThreadState } from "./thread-store.js";
import { countText, encodingFor, messageTokens } from "./tokens.js";

type Entry = ThreadState["messages"][number];

/**
 * Groups history so a tool result never travels without the assistant
 * message that called it: each group is an assistant turn with its tool
 * results, or a single message.
 */
export function groupTurns(messages: readonly Entry[]): Entry[][] {
  const groups: Entry[][] = [];
  for (const entry of messages) {
    const last = groups[groups.length - 1];
    if (entry.message.role === "tool" && last && last[0]?.message.role === "assistant") last.push(entry);
    else if (entry.message.role === "tool")
      continue; // orphaned tool result: its call was summarised away
    else groups.push([entry]);
  }
  return groups;
}

/**
 * Builds the prompt for a turn inside a token budget: system prompt, running
 * summary, retrieved memories (capped), then the newest history that fits,
 * then the new input.
 */
export function assembleContext(
  request: MemoryContextRequest,
  state: ThreadState,
  retrieved: readonly MemoryHit[],
): MemoryContextReply {
  const budget = request.budgetTokens;
  // stored counts are o200k_base; a model with another encoding is counted again
  const encoding = encodingFor(request.model);
  const count = (message: ChatMessage) => messageTokens(message, encoding);
  const dropped: string[] = [];
  const system: ChatMessage[] = request.systemPrompt
    ? [{ role: "system", content: request.systemPrompt }]
    : [];
  const systemTokens = system.reduce((sum, message) => sum + count(message), 0);
  const inputTokens = request.input.reduce((sum, message) => sum + count(message), 0);
  let remaining = budget - systemTokens - inputTokens;

  let summaryMessage: ChatMessage | undefined;
  let summaryTokens = 0;
  if (state.summary) {
    const candidate: ChatMessage = {
      role: "system",
      content: `Summary of the earlier conversation:\n${state.summary}`,
    };
    const tokens = count(candidate);
    if (tokens <= Math.max(0, remaining) * 0.5) {
      summaryMessage = candidate;
      summaryTokens = tokens;
      remaining -= tokens;
    } else {
      dropped.push("summary: over its share of the budget");
    }
  }

  const memoryLines: string[] = [];
  let retrievedTokens = 0;
  let retrievedDropped = 0;
  const retrievalCap = Math.max(0, remaining) * 0.25;
  for (const hit of retrieved) {
    const tokens = countText(hit.text, encoding) + 2;
    if (retrievedTokens + tokens > retrievalCap) {
      retrievedDropped++;
      continue;
    }
    memoryLines.push(`- ${hit.text}`);
    retrievedTokens += tokens;
  }
  const memoryMessage: ChatMessage | undefined =
    memoryLines.length > 0
      ? { role: "system", content: `Relevant memories:\n${memoryLines.join("\n")}` }
      : undefined;
  if (memoryMessage) {
    retrievedTokens = count(memoryMessage);
    remaining -= retrievedTokens;
  }
  if (retrievedDropped > 0) dropped.push(`retrieved: ${retrievedDropped} memories over the retrieval cap`);

  const groups = groupTurns(state.messages);
  const kept: Entry[][] = [];
  let historyTokens = 0;
  let historyDropped = 0;
  for (let index = groups.length - 1; index >= 0; index--) {
    const group = groups[index]!;
    const tokens = group.reduce(
      (sum, entry) => sum + (encoding === "o200k_base" ? entry.tokens : count(entry.message)),
      0,
    );
    if (historyTokens + tokens > remaining) {
      historyDropped += groups.slice(0, index + 1).reduce((sum, g) => sum + g.length, 0);
      break;
    }
    kept.unshift(group);
    historyTokens += tokens;
  }
  if (historyDropped > 0) dropped.push(`history: ${historyDropped} older messages over the budget`);
  if (budget - systemTokens - inputTokens < 0) dropped.push("input: the new input alone exceeds the budget");

  const history = kept.flat().map((entry) => entry.message);
  const messages: ChatMessage[] = [
    ...system,
    ...(summaryMessage ? [summaryMessage] : []),
    ...(memoryMessage ? [memoryMessage] : []),
    ...history,
    ...request.input,
  ];
  return {
    messages,
    sections: {
      system: { tokens: systemTokens, items: system.length, dropped: 0 },
      summary: {
        tokens: summaryTokens,
        items: summaryMessage ? 1 : 0,
        dropped: state.summary && !summaryMessage ? 1 : 0,
      },
      history: { tokens: historyTokens, items: history.length, dropped: historyDropped },
      retrieved: {
        tokens: memoryMessage ? retrievedTokens : 0,
        items: memoryLines.length,
        dropped: retrievedDropped,
      },
      input: { tokens: inputTokens, items: request.input.length, dropped: 0 },
    },
    totalTokens:
      systemTokens + summaryTokens + (memoryMessage ? retrievedTokens : 0) + historyTokens + inputTokens,
    dropped,
  };
}
