import type { ChatMessage, MemoryContextRequest, MemoryHit } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { assembleContext } from "./context.js";
import type { ThreadState } from "./thread-store.js";
import { countText, messageTokens } from "./tokens.js";

const meta = { v: 1 as const, tenant: "t", requestId: "r", deadline: Date.now() + 10_000 };
const user = (content: string): ChatMessage => ({ role: "user", content });
const assistant = (content: string): ChatMessage => ({ role: "assistant", content });
const call = (id: string): ChatMessage => ({
  role: "assistant",
  content: null,
  tool_calls: [{ id, type: "function", function: { name: "lookup", arguments: `{"q":"${id}"}` } }],
});
const result = (id: string, content = `result of ${id}`): ChatMessage => ({
  role: "tool",
  tool_call_id: id,
  content,
});

function state(messages: ChatMessage[], extra: Partial<ThreadState> = {}): ThreadState {
  return {
    found: true,
    summary: null,
    summaryTokens: 0,
    older: 0,
    messages: messages.map((message, index) => ({
      id: `m${index}`,
      seq: index + 1,
      message,
      tokens: messageTokens(message),
    })),
    ...extra,
  };
}

function request(input: ChatMessage[], budgetTokens: number, extra: Partial<MemoryContextRequest> = {}) {
  return { meta, agent: "a", input, budgetTokens, retrieval: false, ...extra } as MemoryContextRequest;
}

/** Every tool message follows the assistant message that called it, and every call is answered. */
function assertToolPairs(messages: ChatMessage[]) {
  const open = new Set<string>();
  for (const message of messages) {
    if (message.role === "tool") {
      expect(open.has(message.tool_call_id), `result ${message.tool_call_id} without its call`).toBe(true);
      open.delete(message.tool_call_id);
    } else {
      expect([...open], "calls left unanswered").toEqual([]);
      if (message.role === "assistant") for (const c of message.tool_calls ?? []) open.add(c.id);
    }
  }
}

describe("assembleContext", () => {
  it("keeps the newest turns that fit, in order, and counts every section", () => {
    const history = Array.from({ length: 40 }, (_, n) =>
      n % 2 ? assistant(`answer ${n}`) : user(`question ${n}`),
    );
    const reply = assembleContext(
      request([user("latest question")], 120, { systemPrompt: "Be brief." }),
      state(history),
      [],
    );
    expect(reply.totalTokens).toBeLessThanOrEqual(120);
    expect(reply.messages[0]).toEqual({ role: "system", content: "Be brief." });
    expect(reply.messages.at(-1)).toEqual(user("latest question"));
    expect(reply.messages.at(-2)).toEqual(assistant("answer 39"));
    const kept = reply.messages.slice(1, -1).map((message) => Number(String(message.content).split(" ")[1]));
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 40 - kept.length + i));
    expect(reply.sections.history.items + reply.sections.history.dropped).toBe(40);
    expect(reply.sections.system.tokens).toBe(4 + countText("Be brief."));
    expect(reply.sections.input.tokens).toBe(4 + countText("latest question"));
    const sum = Object.values(reply.sections).reduce((total, section) => total + section.tokens, 0);
    expect(reply.totalTokens).toBe(sum);
    expect(reply.dropped.some((line) => line.startsWith("history:"))).toBe(true);
  });

  it("drops a tool call together with its results, never one without the other", () => {
    const history: ChatMessage[] = [
      user("look up a"),
      call("a"),
      result("a", "x".repeat(400)),
      assistant("a done"),
      user("look up b"),
      call("b"),
      result("b"),
      assistant("b done"),
    ];
    for (let budget = 20; budget <= 400; budget += 7) {
      const reply = assembleContext(request([user("next")], budget), state(history), []);
      assertToolPairs(reply.messages);
      expect(reply.messages.at(-1)).toEqual(user("next"));
    }
  });

  it("never sends a tool result whose call was summarised away, nor an unanswered call", () => {
    const reply = assembleContext(
      request([user("go on")], 10_000),
      state([result("gone"), assistant("after"), call("never-answered"), user("hello")]),
      [],
    );
    assertToolPairs(reply.messages);
    expect(reply.messages.map((message) => message.role)).toEqual(["assistant", "user", "user"]);
  });

  it("keeps a tool loop that continues in the input with its call from history", () => {
    const reply = assembleContext(request([result("c")], 10_000), state([user("weather?"), call("c")]), []);
    assertToolPairs(reply.messages);
    expect(reply.messages).toHaveLength(3);
  });

  it("trims a client's long input history but always keeps the last user turn and its system message", () => {
    const input: ChatMessage[] = [
      { role: "system", content: "client system prompt" },
      ...Array.from({ length: 30 }, (_, n) =>
        n % 2 ? assistant(`reply ${n} `.repeat(5)) : user(`ask ${n} `.repeat(5)),
      ),
      user("final question"),
    ];
    const reply = assembleContext(request(input, 150), state([]), []);
    expect(reply.totalTokens).toBeLessThanOrEqual(150);
    expect(reply.messages[0]).toEqual({ role: "system", content: "client system prompt" });
    expect(reply.messages.at(-1)).toEqual(user("final question"));
    expect(reply.sections.input.dropped).toBeGreaterThan(0);
    expect(reply.sections.input.items + reply.sections.input.dropped).toBe(32);
  });

  it("puts the summary after the system prompt and retrieved memories just before the last question, each inside its share", () => {
    const hits: MemoryHit[] = Array.from({ length: 10 }, (_, n) => ({
      id: `c${n}`,
      documentId: `d${n}`,
      kind: "fact",
      text: `memory number ${n} `.repeat(10),
      score: 1 - n / 10,
      metadata: {},
      tokens: 40,
    }));
    const reply = assembleContext(
      request([user("hi")], 1000, { systemPrompt: "sys" }),
      state([user("old"), assistant("older answer")], {
        summary: "They talked about cars.",
        summaryTokens: 6,
        older: 3,
      }),
      hits,
    );
    expect(String(reply.messages[1]?.content)).toContain("They talked about cars.");
    expect(reply.messages.slice(2, 4)).toEqual([user("old"), assistant("older answer")]);
    expect(String(reply.messages.at(-2)?.content)).toMatch(/^Relevant memories:\n- memory number 0/);
    expect(reply.messages.at(-1)).toEqual(user("hi"));
    expect(reply.sections.retrieved.items).toBeGreaterThan(0);
    expect(reply.sections.retrieved.dropped).toBe(10 - reply.sections.retrieved.items);
    expect(reply.sections.retrieved.tokens).toBeLessThanOrEqual(
      (1000 - reply.sections.system.tokens - reply.sections.input.tokens - reply.sections.summary.tokens) *
        0.25,
    );
    // messages outside the hot window that no summary covers yet are reported
    expect(reply.sections.history.dropped).toBe(3);
    expect(reply.totalTokens).toBeLessThanOrEqual(1000);
  });

  it("keeps the prompt prefix of the previous turn when retrieval finds other memories (provider prompt caching)", () => {
    const hit = (text: string): MemoryHit => ({
      id: text,
      documentId: text,
      kind: "fact",
      text,
      score: 1,
      metadata: {},
      tokens: 10,
    });
    const history = [user("first"), assistant("first answer")];
    const extra = { systemPrompt: "a long stable system prompt", retrieval: true };
    const earlier = assembleContext(
      request([user("second")], 10_000, extra),
      state(history, { summary: "Earlier: cars.", summaryTokens: 5 }),
      [hit("the user likes red")],
    );
    const later = assembleContext(
      request([user("third")], 10_000, extra),
      state([...history, user("second"), assistant("second answer")], {
        summary: "Earlier: cars.",
        summaryTokens: 5,
      }),
      [hit("the user owns a bike"), hit("the user lives in Oslo")],
    );
    // everything the earlier prompt sent before its memories is the start of the later prompt
    const memoryAt = earlier.messages.findIndex((message) => String(message.content).startsWith("Relevant"));
    expect(memoryAt).toBe(earlier.messages.length - 2);
    expect(later.messages.slice(0, memoryAt)).toEqual(earlier.messages.slice(0, memoryAt));
    expect(later.messages.slice(memoryAt, memoryAt + 2)).toEqual([
      user("second"),
      assistant("second answer"),
    ]);
    expect(String(later.messages.at(-2)?.content)).toContain("the user owns a bike");
    expect(later.messages.at(-1)).toEqual(user("third"));
  });

  it("puts retrieved memories before a tool call whose results continue in the input, never between them", () => {
    const memory: MemoryHit = {
      id: "m",
      documentId: "m",
      kind: "fact",
      text: "a memory",
      score: 1,
      metadata: {},
      tokens: 3,
    };
    const reply = assembleContext(
      request([result("c")], 10_000, { retrieval: true }),
      state([user("before"), assistant("reply"), user("weather?"), call("c")]),
      [memory],
    );
    assertToolPairs(reply.messages);
    expect(reply.messages.map((message) => message.role)).toEqual([
      "user",
      "assistant",
      "user",
      "system",
      "assistant",
      "tool",
    ]);
  });

  it("reports, rather than hides, an input larger than the budget", () => {
    const reply = assembleContext(request([user("word ".repeat(200))], 50), state([user("x")]), []);
    expect(reply.messages.at(-1)?.role).toBe("user");
    expect(reply.totalTokens).toBeGreaterThan(50);
    expect(reply.dropped[0]).toMatch(/exceed the budget/);
  });
});
