import { type ChatHandler, contentText } from "@agent-runtime/testkit";

/** A user message asking for a shipment carries `SHIP:<order id>`; the model then calls `ship`. */
export const SHIP_MARKER = /SHIP:([A-Z]-[0-9a-z-]+)/;
/** A user message asking for a long answer (streamed turns) carries `LONG`. */
export const LONG_MARKER = "LONG";

/** The words of a long answer, sent a few characters at a time with a pause between chunks. */
export function longAnswer(seed: string): string {
  return Array.from({ length: 24 }, (_, index) => `w${index}-${seed}`).join(" ");
}

/**
 * The fake model of the chaos suite, a pure function of the conversation (so a model call made
 * again answers the same text): a shipment request becomes a `ship` call (with a fresh call id each
 * time, as a real model's) and then `shipped <order>`; a long request streams slowly; anything else
 * is echoed after a short latency.
 */
export const modelHandler: ChatHandler = (body) => {
  const users = body.messages.filter((message) => message.role === "user");
  const last = contentText(users.at(-1)?.content ?? "");
  const order = SHIP_MARKER.exec(last)?.[1];
  if (order) {
    const result = body.messages.findLast((message) => message.role === "tool");
    if (!result) return { toolCalls: [{ name: "ship", arguments: { order } }], latencyMs: 40 };
    return { content: `shipped ${order}: ${contentText(result.content)}`, latencyMs: 40 };
  }
  if (last.includes(LONG_MARKER)) return { content: longAnswer(last.slice(-12)), chunkDelayMs: 25 };
  return { content: `echo: ${last}`, latencyMs: 40 };
};
