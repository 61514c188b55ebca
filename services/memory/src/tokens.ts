import { type ChatMessage, textOf } from "@agent-runtime/contracts";
import { countTokens as countCl100k } from "gpt-tokenizer/encoding/cl100k_base";
import { countTokens as countO200k } from "gpt-tokenizer/encoding/o200k_base";

export type Encoding = "o200k_base" | "cl100k_base";

/** The encoding a model counts with: cl100k for GPT-4/3.5-era models, o200k otherwise (gpt-4o and later, and a close estimate for others). */
export function encodingFor(model: string | undefined): Encoding {
  if (model && /^(gpt-4(?!o|\.\d)|gpt-3\.5|text-embedding-(3|ada))/i.test(model)) return "cl100k_base";
  return "o200k_base";
}

export function countText(text: string, encoding: Encoding = "o200k_base"): number {
  if (text.length === 0) return 0;
  return encoding === "cl100k_base" ? countCl100k(text) : countO200k(text);
}

/** Tokens one message costs in a prompt (content, tool calls, ~4 tokens of framing). */
export function messageTokens(message: ChatMessage, encoding: Encoding = "o200k_base"): number {
  let total = 4 + countText(textOf(message.content ?? ""), encoding);
  if (message.role === "assistant" && message.tool_calls) {
    for (const call of message.tool_calls) {
      total += countText(call.function.name, encoding) + countText(call.function.arguments, encoding) + 3;
    }
  }
  return total;
}
