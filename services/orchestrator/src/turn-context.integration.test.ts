import type { Bus } from "@agent-runtime/bus";
import { cleanupTestBus, createTestBus } from "@agent-runtime/bus/testing";
import { AgentConfig } from "@agent-runtime/config";
import { type ChatMessage, Endpoints, type RunRequest, RuntimeError } from "@agent-runtime/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { turnContext } from "./turn-context.js";

// Real NATS; memory.context is served here by a stand-in that fails as told, then answers.
let bus: Bus;
beforeEach(async () => {
  bus = await createTestBus();
});
afterEach(async () => {
  await cleanupTestBus(bus);
});

const agent = AgentConfig.parse({ systemPrompt: "You help." });
const input: ChatMessage[] = [{ role: "user", content: "and then?" }];
const request: RunRequest = {
  v: 1,
  runId: "run_context",
  tenant: "acme",
  agent: "assistant",
  input,
  threadId: "thread-1",
  priority: "interactive",
  createdAt: Date.now(),
  deadline: Date.now() + 60_000,
  stream: false,
  source: "chat",
};
const meta = (deadline: number) => ({
  v: 1 as const,
  tenant: "acme",
  requestId: "run_context:context",
  deadline,
});
const history: ChatMessage[] = [
  { role: "system", content: "You help." },
  { role: "user", content: "hello" },
  { role: "assistant", content: "hi" },
  ...input,
];

/** Serves memory.context: the first `failures` requests get `error`, the rest the history. */
function memory(failures: number, error: RuntimeError): { asked: () => number } {
  let asked = 0;
  bus.serve(
    Endpoints.memoryContext,
    async () => {
      asked++;
      if (asked <= failures) throw error;
      return {
        messages: history,
        sections: {
          system: { tokens: 3, items: 1 },
          summary: { tokens: 0, items: 0 },
          history: { tokens: 4, items: 2 },
          retrieved: { tokens: 0, items: 0 },
          input: { tokens: 3, items: 1 },
        },
        totalTokens: 10,
        dropped: [],
      };
    },
    { queue: "memory", maxInFlight: 8 },
  );
  return { asked: () => asked };
}

describe("a turn's context from memory", () => {
  it("is asked again while memory answers with a retryable error, and then used", async () => {
    const stand = memory(
      3,
      new RuntimeError("unavailable", "the memory database is unavailable", { retryable: true }),
    );
    const messages = await turnContext(bus, request, agent, input, meta(Date.now() + 30_000));
    expect(messages).toEqual(history);
    expect(stand.asked()).toBe(4);
  });

  it("fails at once on an error retrying cannot help", async () => {
    const stand = memory(5, new RuntimeError("validation", "thread id too long", { retryable: false }));
    await expect(turnContext(bus, request, agent, input, meta(Date.now() + 30_000))).rejects.toMatchObject({
      code: "validation",
    });
    expect(stand.asked()).toBe(1);
  });

  it("gives up with memory's error when the run's time limit comes first", async () => {
    const stand = memory(
      1000,
      new RuntimeError("unavailable", "the memory database is unavailable", { retryable: true }),
    );
    await expect(turnContext(bus, request, agent, input, meta(Date.now() + 3000))).rejects.toMatchObject({
      code: "unavailable",
    });
    expect(stand.asked()).toBeGreaterThan(1);
  });
});
