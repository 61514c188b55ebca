import { type ChatHandler, contentText } from "@agent-runtime/testkit";

/**
 * A fake model driven by the user's text: `CALL <tool> <json>` makes it call that tool; after a
 * tool it answers with what the tool said; otherwise it answers with everything it was given (what
 * reached its prompt), taking `slowMs` when the text says `SLOW`.
 */
export function commandModel(slowMs: number): ChatHandler {
  return (body) => {
    const last = body.messages.at(-1);
    if (last?.role === "tool") return { content: `tool said: ${contentText(last.content)}` };
    const text = contentText(last?.content);
    const call = /^CALL (\w+) (.*)$/s.exec(text);
    if (call) return { toolCalls: [{ name: call[1]!, arguments: JSON.parse(call[2]!) as unknown }] };
    return {
      content: `seen: ${body.messages.map((message) => contentText(message.content)).join(" | ")}`,
      ...(text.includes("SLOW") ? { latencyMs: slowMs } : {}),
    };
  };
}
