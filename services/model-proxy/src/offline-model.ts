import { type ChatMessage, lastUserText, type ModelChatRequest, textOf } from "@agent-runtime/contracts";
import type { CompletionResult, StreamDelta } from "./provider-call.js";
import { countMessageTokens, countTextTokens } from "./tokens.js";

const ARITHMETIC = /(?:what\s+is|calculate|compute|=)?\s*([-+*/%^().\d\s]{3,})\??\s*$/i;

type OfflineRequest = Pick<ModelChatRequest, "messages" | "tools" | "toolChoice" | "responseFormat">;
type OfflineToolCall = { id: string; type: "function"; function: { name: string; arguments: string } };

/**
 * The built-in offline dev model: deterministic, no network. With a `calculator` tool on offer and
 * arithmetic in the question it asks for the tool first, then answers with the tool's result;
 * otherwise it answers briefly. It keeps the meaning of `tool_choice` (`none` never calls a tool,
 * `required` or a named tool always does) and of `response_format` (a JSON object, or a value of
 * the given JSON schema), so every client feature can be tried without a provider.
 */
export function offlineCompletion(request: OfflineRequest): CompletionResult {
  const messages = request.messages;
  const last = messages[messages.length - 1];
  const question = lastUserText(messages).trim();
  let content: string;
  let toolCalls: OfflineToolCall[] | undefined;

  const arithmetic = question.match(ARITHMETIC)?.[1];
  const expression =
    arithmetic && /\d/.test(arithmetic) && /[-+*/%^]/.test(arithmetic) ? arithmetic.trim() : undefined;
  const wanted = toolToCall(request, expression, last?.role === "tool");
  if (wanted) {
    toolCalls = [
      {
        id: `call_offline_${messages.length}`,
        type: "function",
        function: {
          name: wanted,
          arguments: JSON.stringify(wanted === "calculator" && expression ? { expression } : {}),
        },
      },
    ];
    content = "";
  } else if (last?.role === "tool") {
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
    content = question
      ? `(offline dev model) You said: "${question.slice(0, 200)}". Configure OPENAI_BASE_URL and OPENAI_API_KEY for real answers.`
      : "(offline dev model) Hello.";
  }
  if (!toolCalls) content = formatted(content, request.responseFormat);
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

/** The tool the offline model calls, if any, as `tool_choice` allows or demands. */
function toolToCall(request: OfflineRequest, expression: string | undefined, afterTool: boolean) {
  const offered = (request.tools ?? []).map((tool) => tool.function.name);
  const choice = request.toolChoice ?? "auto";
  if (offered.length === 0 || choice === "none") return undefined;
  if (typeof choice === "object")
    return offered.includes(choice.function.name) ? choice.function.name : undefined;
  const calculator = offered.includes("calculator") && expression && !afterTool ? "calculator" : undefined;
  if (choice === "required") return calculator ?? offered[0];
  return calculator;
}

/** The answer in the requested format: as is, wrapped in a JSON object, or a value of the schema. */
function formatted(text: string, format: OfflineRequest["responseFormat"]): string {
  if (!format || format.type === "text") return text;
  if (format.type === "json_object") return JSON.stringify({ answer: text });
  return JSON.stringify(sampleOf(format.json_schema.schema ?? {}, text, 0));
}

/** A small value of a JSON schema: strings hold the answer, numbers 0, required properties filled. */
function sampleOf(schema: Record<string, unknown>, text: string, depth: number): unknown {
  if (depth > 8) return null;
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const options = (schema.anyOf ?? schema.oneOf) as Record<string, unknown>[] | undefined;
  if (Array.isArray(options) && options[0]) return sampleOf(options[0], text, depth + 1);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "string":
      return text;
    case "number":
    case "integer":
      return typeof schema.minimum === "number" ? schema.minimum : 0;
    case "boolean":
      return false;
    case "null":
      return null;
    case "array": {
      const minItems = typeof schema.minItems === "number" ? schema.minItems : 0;
      const items = (schema.items ?? {}) as Record<string, unknown>;
      return Array.from({ length: minItems }, () => sampleOf(items, text, depth + 1));
    }
    default: {
      const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
      const required = Array.isArray(schema.required)
        ? (schema.required as string[])
        : Object.keys(properties);
      return Object.fromEntries(
        required.map((name) => [name, sampleOf(properties[name] ?? {}, text, depth + 1)]),
      );
    }
  }
}

/**
 * The offline answer as a stream: its text in word-sized deltas, then its tool calls, so a chat
 * UI shows the answer arriving as it would from a provider.
 */
export function streamOffline(result: CompletionResult, onDelta: (delta: StreamDelta) => void): void {
  const text = textOf(result.message.content);
  for (const piece of text.match(/\s*\S+\s*/g) ?? []) onDelta({ content: piece });
  (result.message.tool_calls ?? []).forEach((call, index) => {
    onDelta({
      toolCalls: [{ index, id: call.id, name: call.function.name, arguments: call.function.arguments }],
    });
  });
}
