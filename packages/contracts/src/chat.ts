import { z } from "zod";

/** OpenAI chat-completions message format, used inside the runtime too. */
export const ToolCall = z.object({
  id: z.string().min(1),
  type: z.literal("function").default("function"),
  function: z.object({ name: z.string().min(1), arguments: z.string() }),
});
export type ToolCall = z.infer<typeof ToolCall>;

const TextPart = z.object({ type: z.literal("text"), text: z.string() });
const ImagePart = z.object({
  type: z.literal("image_url"),
  image_url: z.object({ url: z.string(), detail: z.string().optional() }),
});
export const ContentPart = z.discriminatedUnion("type", [TextPart, ImagePart]);
export type ContentPart = z.infer<typeof ContentPart>;

export const MessageContent = z.union([z.string(), z.array(ContentPart)]);
export type MessageContent = z.infer<typeof MessageContent>;

export const SystemMessage = z.object({
  role: z.enum(["system", "developer"]),
  content: MessageContent,
  name: z.string().optional(),
});
export const UserMessage = z.object({
  role: z.literal("user"),
  content: MessageContent,
  name: z.string().optional(),
});
export const AssistantMessage = z.object({
  role: z.literal("assistant"),
  content: MessageContent.nullable().default(null),
  tool_calls: z.array(ToolCall).optional(),
  name: z.string().optional(),
});
export const ToolMessage = z.object({
  role: z.literal("tool"),
  content: MessageContent,
  tool_call_id: z.string().min(1),
});
export const ChatMessage = z.discriminatedUnion("role", [
  SystemMessage,
  UserMessage,
  AssistantMessage,
  ToolMessage,
]);
export type ChatMessage = z.infer<typeof ChatMessage>;
export type AssistantMessage = z.infer<typeof AssistantMessage>;

/** Tool definition in the OpenAI `tools` format. */
export const ToolSpec = z.object({
  type: z.literal("function"),
  function: z.object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "tool names are 1-64 letters, digits, '_' or '-'"),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().optional(),
  }),
});
export type ToolSpec = z.infer<typeof ToolSpec>;

export function textOf(content: MessageContent | null | undefined): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content.map((part) => (part.type === "text" ? part.text : "")).join("");
}

/** The text of the last user message, empty when there is none. */
export function lastUserText(
  messages: readonly { role: string; content?: MessageContent | null | undefined }[],
): string {
  return textOf(messages.findLast((message) => message.role === "user")?.content);
}

/** A fragment of a streamed tool call (OpenAI delta format, camel-cased). */
export const ToolCallDelta = z.object({
  index: z.number().int().nonnegative(),
  id: z.string().optional(),
  name: z.string().optional(),
  arguments: z.string().optional(),
});
export type ToolCallDelta = z.infer<typeof ToolCallDelta>;

/** OpenAI `tool_choice`: whether the model may, must or must not call a tool, or which one it must call. */
export const ToolChoice = z.union([
  z.enum(["auto", "none", "required"]),
  z.object({ type: z.literal("function"), function: z.object({ name: z.string().min(1).max(64) }) }),
]);
export type ToolChoice = z.infer<typeof ToolChoice>;

/** OpenAI `response_format`: plain text, any JSON object, or JSON matching a schema (structured outputs). */
export const ResponseFormat = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({
    type: z.literal("json_schema"),
    json_schema: z.object({
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "names are 1-64 letters, digits, '_' or '-'"),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullish(),
    }),
  }),
]);
export type ResponseFormat = z.infer<typeof ResponseFormat>;
