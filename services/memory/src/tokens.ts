import { type ChatMessage, textOf } from "@agent-runtime/contracts";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";

export function countText(text: string): number {
  return text.length === 0 ? 0 : countTokens(text);
}

/** Tokens one message costs in a prompt (content, tool calls, ~4 tokens of framing). */
export function messageTokens(message: ChatMessage): number {
  let total = 4 + countText(textOf(message.content ?? ""));
  if (message.role === "assistant" && message.tool_calls) {
    for (const call of message.tool_calls)
      total += countText(call.function.name) + countText(call.function.arguments) + 3;
  }
  return total;
}
