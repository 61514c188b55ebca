import { contentText, type FakeOpenAI, startFakeOpenAI } from "@agent-runtime/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLASSIFIER_PROMPT } from "./classifier.js";
import { type ProxyHarness, startProxyHarness, writeConfigFile } from "./test-support.js";

let fake: FakeOpenAI;
let harness: ProxyHarness;

const user = (content: string) => [{ role: "user" as const, content }];

beforeAll(async () => {
  fake = await startFakeOpenAI();
  // the fake plays both the classifier and the answering models
  fake.setHandler((body) => {
    const system = contentText(body.messages[0]?.content);
    if (system !== CLASSIFIER_PROMPT) return { content: `answer from ${body.model}` };
    const question = contentText(body.messages[1]?.content);
    if (question.includes("broken")) return { fault: { kind: "status", status: 400 } };
    if (question.includes("mumble")) return { content: "Well, it depends." };
    return { content: question.includes("zebra") ? "COMPLEX" : "SIMPLE" };
  });
  const config = writeConfigFile({
    providers: { p: { baseUrl: fake.url, apiKey: "k" } },
    models: {
      small: { provider: "p", pricing: { input: 1, output: 1 } },
      large: { provider: "p", pricing: { input: 10, output: 10 } },
    },
    tiers: { fast: ["small"], strong: ["large"] },
    classifier: { tier: "fast", minComplexity: 0, maxComplexity: 0.4 },
  });
  harness = await startProxyHarness({ AGENT_CONFIG: config });
});

afterAll(async () => {
  await harness?.stop();
  await fake?.close();
});

function classifierCalls(since: number) {
  return fake
    .chatRequests()
    .slice(since)
    .filter((body) => contentText(body.messages[0]?.content) === CLASSIFIER_PROMPT);
}

describe("complexity classifier", () => {
  it("escalates an unsure request to strong when the fast-tier classifier says COMPLEX", async () => {
    const before = fake.chatRequests().length;
    const reply = await harness.chat({ messages: user("tell me about the zebra") });
    expect(reply.route.tier).toBe("strong");
    expect(reply.model).toBe("large");
    expect(reply.route.reason).toMatch(/classifier said complex/);
    const calls = classifierCalls(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ model: "small", temperature: 0, max_tokens: 3 });
  });

  it("keeps a request on fast when the classifier says SIMPLE, and caches its verdict", async () => {
    const before = fake.chatRequests().length;
    const first = await harness.chat({ messages: user("tell me about horses") });
    const second = await harness.chat({ messages: user("tell me about horses") });
    expect(first.route.tier).toBe("fast");
    expect(first.route.reason).toMatch(/classifier said simple/);
    expect(second.route.reason).toMatch(/classifier said simple/);
    // the classifier call is deterministic, so the second verdict came from the response cache
    expect(classifierCalls(before)).toHaveLength(1);
  });

  it("does not ask when the heuristic is sure or the caller chose the tier", async () => {
    const before = fake.chatRequests().length;
    const hard = await harness.chat({
      messages: user(
        "Analyze the trade-offs of this architecture step by step, compare event sourcing with CRUD, and design a migration strategy.",
      ),
    });
    expect(hard.route.tier).toBe("strong");
    await harness.chat({ messages: user("tell me about the zebra"), tier: "fast" });
    expect(classifierCalls(before)).toHaveLength(0);
  });

  it("keeps the heuristic's route when the classifier fails or rambles", async () => {
    const failed = await harness.chat({ messages: user("this is broken") });
    expect(failed.route.tier).toBe("fast");
    expect(failed.route.reason).toMatch(/classifier failed, heuristic kept/);
    const rambled = await harness.chat({ messages: user("mumble mumble") });
    expect(rambled.route.reason).toMatch(/classifier answer unreadable/);
  });
});
