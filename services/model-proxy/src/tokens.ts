import { type ChatMessage, type ModelChatRequest, textOf } from "@agent-runtime/contracts";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";

/** Tokens of a message list as chat models count them (content + ~4 per message of framing). */
export function countMessageTokens(messages: readonly ChatMessage[]): number {
  let total = 3;
  for (const message of messages) {
    total += 4 + countTokens(textOf(message.content ?? ""));
    if (message.role === "assistant" && message.tool_calls) {
      for (const call of message.tool_calls)
        total += countTokens(call.function.name) + countTokens(call.function.arguments);
    }
  }
  return total;
}

export function estimatePromptTokens(request: Pick<ModelChatRequest, "messages" | "tools">): number {
  let total = countMessageTokens(request.messages);
  if (request.tools && request.tools.length > 0) total += countTokens(JSON.stringify(request.tools));
  return total;
}

export function countTextTokens(text: string): number {
  return text.length === 0 ? 0 : countTokens(text);
}
