import { AgentConfig, chooseAgentVariant } from "@agent-runtime/config";
import { type ChatMessage, RequestMeta } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { promptWithoutMemory, turnSystemPrompt } from "./turn-context.js";

const agent = (input: unknown) => AgentConfig.parse(input);
const input: ChatMessage[] = [{ role: "user", content: "what is 17 + 25?" }];
const metaFor = (userId: string) =>
  RequestMeta.parse({ tenant: "acme", requestId: `r-${userId}`, userId, deadline: Date.now() + 60_000 });

describe("a turn's prompt without memory", () => {
  const plain = agent({ systemPrompt: "You add numbers." });

  it("is the system prompt then the input for a turn with no history", () => {
    const expected = [{ role: "system", content: "You add numbers." }, ...input];
    expect(promptWithoutMemory({}, plain, "You add numbers.", input)).toEqual(expected);
    expect(
      promptWithoutMemory({ threadId: "t1", newThread: true }, plain, "You add numbers.", input),
    ).toEqual(expected);
    expect(promptWithoutMemory({}, plain, undefined, input)).toEqual(input);
  });

  it("is left to memory when the thread has earlier turns or the agent retrieves memories", () => {
    expect(promptWithoutMemory({ threadId: "t1" }, plain, "You add numbers.", input)).toBeUndefined();
    expect(
      promptWithoutMemory({ threadId: "t1", newThread: false }, plain, "You add numbers.", input),
    ).toBeUndefined();
    const retrieving = agent({ systemPrompt: "You add numbers.", memory: { retrieval: true } });
    expect(promptWithoutMemory({}, retrieving, "You add numbers.", input)).toBeUndefined();
  });

  it("is left to memory, to be trimmed, when its JSON is over the budget by a single byte", () => {
    const messages = [{ role: "system", content: "You add numbers." }, ...input];
    const bytes = Buffer.byteLength(JSON.stringify(messages));
    const budget = (tokens: number) => agent({ memory: { contextBudgetTokens: tokens } });
    expect(promptWithoutMemory({}, budget(bytes), "You add numbers.", input)).toEqual(messages);
    expect(promptWithoutMemory({}, budget(bytes - 1), "You add numbers.", input)).toBeUndefined();
  });

  it("counts bytes, not characters, so text in other scripts never slips past the budget", () => {
    const greek: ChatMessage[] = [{ role: "user", content: "αβγδ".repeat(10) }];
    const characters = JSON.stringify(greek).length;
    expect(
      promptWithoutMemory({}, agent({ memory: { contextBudgetTokens: characters } }), undefined, greek),
    ).toBe(undefined);
  });
});

describe("a turn's system prompt", () => {
  const ab = agent({
    systemPrompt: "default prompt",
    variants: [
      { name: "mini", weight: 1, model: "fast-mini", systemPrompt: "short prompt" },
      { name: "large", weight: 1, model: "strong-large" },
    ],
  });

  it("is the chosen variant's, or the agent's when the variant has none", () => {
    const users = Array.from({ length: 50 }, (_, index) => `user-${index}`);
    const inVariant = (name: string) =>
      users.find((user) => chooseAgentVariant("desk", ab, metaFor(user))?.name === name) ?? "";
    expect(turnSystemPrompt({ agent: "desk" }, ab, metaFor(inVariant("mini")))).toBe("short prompt");
    expect(turnSystemPrompt({ agent: "desk" }, ab, metaFor(inVariant("large")))).toBe("default prompt");
  });

  it("is the agent's for an agent without variants", () => {
    expect(turnSystemPrompt({ agent: "plain" }, agent({ systemPrompt: "hello" }), metaFor("u"))).toBe(
      "hello",
    );
    expect(turnSystemPrompt({ agent: "plain" }, agent({}), metaFor("u"))).toBe(agent({}).systemPrompt);
  });
});
