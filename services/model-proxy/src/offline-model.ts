import { type ChatMessage, type ModelChatRequest, textOf } from "@agent-runtime/contracts";
import type { CompletionResult } from "./provider-call.js";
import { countMessageTokens, countTextTokens } from "./tokens.js";

const ARITHMETIC = /(?:what\s+is|calculate|compute|=)?\s*([-+*/%^().\d\s]{3,})\??\s*$/i;

/**
 * The built-in offline dev model: deterministic, no network. With a
 * `calculator` tool on offer and arithmetic in the question it asks for the
 * tool first, then answers with the tool's result; otherwise it answers briefly.
 */
export function offlineCompletion(request: Pick<ModelChatRequest, "messages" | "tools">): CompletionResult {
  const messages = request.messages;
  const last = messages[messages.length - 1];
  const lastUser = [...messages].reverse().find((message) => message.role === "user");
  const question = textOf(lastUser?.content ?? "").trim();
  let content: string;
  let toolCalls:
    | { id: string; type: "function"; function: { name: string; arguments: string } }[]
    | undefined;

  if (last?.role === "tool") {
    const raw = textOf(last.content);
    let result: unknown = raw;
    try {
      const parsed = JSON.parse(raw) as { result?: unknown };
      if (parsed && typeof parsed === "object" && "result" in parsed) result = parsed.result;
    } catch {
      // not JSON: quote the tool's text as is
    }
    content = `The result is ${String(result)}.`;
  } else {
    const match = question.match(ARITHMETIC);
    const offersCalculator = request.tools?.some((tool) => tool.function.name === "calculator");
    if (match?.[1] && /\d/.test(match[1]) && /[-+*/%^]/.test(match[1]) && offersCalculator) {
      toolCalls = [
        {
          id: `call_offline_${messages.length}`,
          type: "function",
          function: { name: "calculator", arguments: JSON.stringify({ expression: match[1].trim() }) },
        },
      ];
      content = "";
    } else {
      content = question
        ? `(offline dev model) You said: "${question.slice(0, 200)}". Configure OPENAI_BASE_URL and OPENAI_API_KEY for real answers.`
        : "(offline dev model) Hello.";
    }
  }
  const message: ChatMessage & { role: "assistant" } = toolCalls
    ? { role: "assistant", content: null, tool_calls: toolCalls }
    : { role: "assistant", content };
  const promptTokens = countMessageTokens(messages);
  const completionTokens =
    countTextTokens(content) + (toolCalls ? countTextTokens(toolCalls[0]!.function.arguments) : 0);
  return {
    message,
    finishReason: toolCalls ? "tool_calls" : "stop",
    usage: { promptTokens, completionTokens, cachedTokens: 0, totalTokens: promptTokens + completionTokens },
    usageEstimated: true,
  };
}
