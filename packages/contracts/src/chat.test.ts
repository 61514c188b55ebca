import { describe, expect, it } from "vitest";
import { type ChatMessage, lastUserText } from "./chat.js";

describe("lastUserText", () => {
  it("reads the last user message, text parts joined", () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "be brief" },
      { role: "user", content: "first" },
      { role: "assistant", content: "answer" },
      {
        role: "user",
        content: [
          { type: "text", text: "second " },
          { type: "image_url", image_url: { url: "https://example.com/a.png" } },
          { type: "text", text: "question" },
        ],
      },
      { role: "tool", content: "42", tool_call_id: "c1" },
    ];
    expect(lastUserText(messages)).toBe("second question");
  });

  it("is empty without a user message", () => {
    expect(lastUserText([])).toBe("");
    expect(lastUserText([{ role: "system", content: "be brief" }])).toBe("");
  });
});
