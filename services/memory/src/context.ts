import type {
  ChatMessage,
  MemoryContextReply,
  MemoryContextRequest,
  MemoryHit,
} from "@agent-runtime/contracts";
import type { ThreadState } from "./thread-store.js";
import { countText, type Encoding, encodingFor, messageTokens } from "./tokens.js";

/** A message of the conversation (stored history or this turn's input) with its cost. */
export interface Entry {
  message: ChatMessage;
  tokens: number;
  origin: "history" | "input";
  /** Position in stored history + input, oldest first. */
  index: number;
}

export interface ContextShares {
  /** Largest share of the budget left after system prompt and input the summary may take. */
  summary: number;
  /** Largest share of what is left after the summary that retrieved memories may take. */
  retrieved: number;
}

export const DEFAULT_SHARES: ContextShares = { summary: 0.5, retrieved: 0.25 };

/**
 * Groups a conversation so a tool result never travels without the assistant
 * message that called it, nor a call without all its results: each group is
 * an assistant turn with its tool results, or one other message. Tool results
 * whose call is gone (summarised away) are returned as orphans; a call left
 * without results is marked incomplete.
 */
export function groupTurns(entries: readonly Entry[]): {
  groups: { entries: Entry[]; incomplete: boolean }[];
  orphans: Entry[];
} {
  const groups: { entries: Entry[]; incomplete: boolean; open: Set<string> }[] = [];
  const orphans: Entry[] = [];
  for (const entry of entries) {
    const message = entry.message;
    if (message.role === "tool") {
      const last = groups[groups.length - 1];
      if (last?.open.has(message.tool_call_id)) {
        last.entries.push(entry);
        last.open.delete(message.tool_call_id);
        last.incomplete = last.open.size > 0;
      } else orphans.push(entry);
      continue;
    }
    const calls = message.role === "assistant" ? (message.tool_calls ?? []) : [];
    const open = new Set(calls.map((call) => call.id));
    groups.push({ entries: [entry], incomplete: open.size > 0, open });
  }
  return { groups: groups.map(({ entries, incomplete }) => ({ entries, incomplete })), orphans };
}

const sum = (entries: readonly Entry[]) => entries.reduce((total, entry) => total + entry.tokens, 0);

/**
 * Builds the prompt for a turn inside a token budget: the system prompt, the
 * running summary (capped), then the newest conversation that fits, ending
 * with this turn's input. Everything is counted with the target model's
 * tokenizer. The input from its last user message on is always kept; older
 * input (a client's whole history) is trimmed like stored history.
 *
 * Retrieved memories (capped) change with every question, so they travel in
 * the changing tail, just before this turn's last user message: the prompt
 * up to there (system prompt, summary, earlier turns) is the same prefix the
 * previous turn sent, which providers serve from their prompt cache.
 */
export function assembleContext(
  request: MemoryContextRequest,
  state: ThreadState,
  retrieved: readonly MemoryHit[],
  shares: ContextShares = DEFAULT_SHARES,
): MemoryContextReply {
  const budget = request.budgetTokens;
  const encoding: Encoding = encodingFor(request.model);
  const count = (message: ChatMessage) => messageTokens(message, encoding);
  const dropped: string[] = [];

  const system: ChatMessage[] = request.systemPrompt
    ? [{ role: "system", content: request.systemPrompt }]
    : [];
  const systemTokens = system.reduce((total, message) => total + count(message), 0);

  // stored counts are o200k_base; another encoding is counted again
  const conversation: Entry[] = [
    ...state.messages.map((stored, index) => ({
      message: stored.message,
      tokens: encoding === "o200k_base" ? stored.tokens : count(stored.message),
      origin: "history" as const,
      index,
    })),
    ...request.input.map((message, offset) => ({
      message,
      tokens: count(message),
      origin: "input" as const,
      index: state.messages.length + offset,
    })),
  ];
  const lastUser = request.input.findLastIndex((message) => message.role === "user");
  const tailStart = state.messages.length + Math.max(0, lastUser);
  const { groups, orphans } = groupTurns(conversation);
  const isMandatory = (group: Entry[]) =>
    group.some((entry) => entry.index >= tailStart) ||
    group.some(
      (entry) =>
        entry.origin === "input" && (entry.message.role === "system" || entry.message.role === "developer"),
    );
  const mandatory = groups.filter((group) => isMandatory(group.entries));
  // a call whose results never came would make the provider reject the prompt
  const optional = groups.filter(
    (group, position) => !isMandatory(group.entries) && !(group.incomplete && position < groups.length - 1),
  );
  const unusable = [
    ...orphans,
    ...groups
      .filter((group) => !mandatory.includes(group) && !optional.includes(group))
      .flatMap((group) => group.entries),
  ];

  const mandatoryTokens = sum(mandatory.flatMap((group) => group.entries));
  let remaining = budget - systemTokens - mandatoryTokens;
  if (remaining < 0) dropped.push("input: the system prompt and new input alone exceed the budget");

  let summaryMessage: ChatMessage | undefined;
  let summaryTokens = 0;
  if (state.summary) {
    const candidate: ChatMessage = {
      role: "system",
      content: `Summary of the earlier conversation:\n${state.summary}`,
    };
    const tokens = count(candidate);
    if (tokens <= Math.max(0, remaining) * shares.summary) {
      summaryMessage = candidate;
      summaryTokens = tokens;
      remaining -= tokens;
    } else dropped.push("summary: over its share of the budget");
  }

  const memoryLines: string[] = [];
  let retrievedDropped = 0;
  let linesTokens = 0;
  const retrievalCap = Math.max(0, remaining) * shares.retrieved;
  for (const hit of retrieved) {
    const tokens = countText(`- ${hit.text}\n`, encoding);
    if (linesTokens + tokens + 8 > retrievalCap) {
      retrievedDropped++;
      continue;
    }
    memoryLines.push(`- ${hit.text}`);
    linesTokens += tokens;
  }
  const memoryMessage: ChatMessage | undefined =
    memoryLines.length > 0
      ? { role: "system", content: `Relevant memories:\n${memoryLines.join("\n")}` }
      : undefined;
  const retrievedTokens = memoryMessage ? count(memoryMessage) : 0;
  remaining -= retrievedTokens;
  if (retrievedDropped > 0) dropped.push(`retrieved: ${retrievedDropped} memories over the retrieval cap`);

  // newest first, stopping at the first group that does not fit (no gaps in the conversation)
  const kept = new Set(mandatory);
  let conversationDropped = unusable;
  for (let position = optional.length - 1; position >= 0; position--) {
    const group = optional[position]!;
    const tokens = sum(group.entries);
    if (tokens > remaining) {
      conversationDropped = [
        ...conversationDropped,
        ...optional.slice(0, position + 1).flatMap((g) => g.entries),
      ];
      break;
    }
    kept.add(group);
    remaining -= tokens;
  }
  const keptGroups = groups.filter((group) => kept.has(group));
  const keptEntries = keptGroups.flatMap((group) => group.entries);
  // memories go before the first group of this turn's tail (never inside a tool call's group)
  const tailGroup = keptGroups.findIndex((group) => group.entries.some((entry) => entry.index >= tailStart));
  const beforeTail = keptGroups
    .slice(0, tailGroup < 0 ? keptGroups.length : tailGroup)
    .flatMap((group) => group.entries.map((entry) => entry.message));
  const tail =
    tailGroup < 0
      ? []
      : keptGroups.slice(tailGroup).flatMap((group) => group.entries.map((entry) => entry.message));
  const history = keptEntries.filter((entry) => entry.origin === "history");
  const input = keptEntries.filter((entry) => entry.origin === "input");
  const historyDropped =
    conversationDropped.filter((entry) => entry.origin === "history").length + state.older;
  const inputDropped = conversationDropped.filter((entry) => entry.origin === "input").length;
  if (historyDropped > 0) {
    const outside = state.older > 0 ? ` (${state.older} outside the recent window, not yet summarised)` : "";
    dropped.push(`history: ${historyDropped} older messages over the budget${outside}`);
  }
  if (inputDropped > 0) dropped.push(`input: ${inputDropped} older input messages over the budget`);

  const historyTokens = sum(history);
  const inputTokens = sum(input);
  return {
    messages: [
      ...system,
      ...(summaryMessage ? [summaryMessage] : []),
      ...beforeTail,
      ...(memoryMessage ? [memoryMessage] : []),
      ...tail,
    ],
    sections: {
      system: { tokens: systemTokens, items: system.length, dropped: 0 },
      summary: {
        tokens: summaryTokens,
        items: summaryMessage ? 1 : 0,
        dropped: state.summary && !summaryMessage ? 1 : 0,
      },
      history: { tokens: historyTokens, items: history.length, dropped: historyDropped },
      retrieved: { tokens: retrievedTokens, items: memoryLines.length, dropped: retrievedDropped },
      input: { tokens: inputTokens, items: input.length, dropped: inputDropped },
    },
    totalTokens: systemTokens + summaryTokens + retrievedTokens + historyTokens + inputTokens,
    dropped,
  };
}
