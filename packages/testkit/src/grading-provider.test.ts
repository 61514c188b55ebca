import { encode } from "gpt-tokenizer/encoding/o200k_base";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FakeOpenAI, startFakeOpenAI } from "./fake-openai.js";
import {
  createGradingProvider,
  DEFAULT_PRICES,
  embeddingBill,
  usdOf,
  verdictOf,
} from "./grading-provider.js";
import { PromptPrefixCache } from "./prompt-cache.js";

const grading = createGradingProvider({
  questions: [
    { key: "faq-wifi", facts: ["WIFI-4417"], answer: "The password is WIFI-4417." },
    {
      key: "hard-1",
      facts: ["ORD-1042"],
      hard: true,
      tools: [{ name: "order_lookup", arguments: { id: "1042" } }],
    },
    { key: "deleg-1", facts: [], delegate: { agent: "researcher" } },
  ],
});
let fake: FakeOpenAI;
let client: OpenAI;

beforeAll(async () => {
  fake = await startFakeOpenAI({ defaultHandler: grading.handler });
  client = new OpenAI({ baseURL: fake.url, apiKey: "test", maxRetries: 0, timeout: 5000 });
});
beforeEach(() => grading.reset());
afterAll(() => fake.close());

const longPolicy = `Policy. ${"Our support desk answers every question about accounts, billing and devices politely. ".repeat(90)}`;
const tools = [
  { type: "function" as const, function: { name: "order_lookup", parameters: { type: "object" } } },
  { type: "function" as const, function: { name: "delegate", parameters: { type: "object" } } },
];

describe("grading provider", () => {
  it("counts prompt tokens with the real tokenizer and prices them per model", async () => {
    const completion = await client.chat.completions.create({
      model: "fast-mini",
      messages: [{ role: "user", content: "hello there, how are you?" }],
    });
    const expected = encode("<|user|>hello there, how are you?").length + 3;
    expect(completion.usage?.prompt_tokens).toBe(expected);
    const call = grading.calls[0]!;
    expect(call.usd).toBeCloseTo(usdOf(DEFAULT_PRICES["fast-mini"]!, expected, 0, call.completionTokens), 12);
    await client.chat.completions.create({
      model: "strong-large",
      messages: [{ role: "user", content: "hello there, how are you?" }],
    });
    expect(grading.calls[1]!.usd).toBeGreaterThan(grading.calls[0]!.usd * 10);
  });

  it("reports cached tokens for a repeated prefix of at least 1,024 tokens, in steps of 128", async () => {
    const ask = (question: string, model = "fast-mini") =>
      client.chat.completions.create({
        model,
        messages: [
          { role: "system", content: longPolicy },
          { role: "user", content: question },
        ],
      });
    const first = await ask("first question");
    expect(first.usage?.prompt_tokens).toBeGreaterThan(1024);
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    const second = await ask("a different second question");
    const cached = second.usage?.prompt_tokens_details?.cached_tokens ?? 0;
    expect(cached).toBeGreaterThanOrEqual(1024);
    expect(cached % 128).toBe(0);
    expect(cached).toBeLessThanOrEqual(second.usage?.prompt_tokens ?? 0);
    // another model has its own cache
    expect((await ask("first question", "strong-large")).usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    // a short prompt is never cached
    await client.chat.completions.create({ model: "fast-mini", messages: [{ role: "user", content: "hi" }] });
    const short = await client.chat.completions.create({
      model: "fast-mini",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(short.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    const cachedCall = grading.calls[1]!;
    expect(cachedCall.usd).toBeLessThan(
      usdOf(DEFAULT_PRICES["fast-mini"]!, cachedCall.promptTokens, 0, cachedCall.completionTokens),
    );
  });

  it("with prompt caching off bills every prompt token in full, and stamps each call", async () => {
    const uncached = createGradingProvider({ questions: [], promptCaching: false });
    const server = await startFakeOpenAI({ defaultHandler: uncached.handler });
    try {
      const other = new OpenAI({ baseURL: server.url, apiKey: "test", maxRetries: 0, timeout: 5000 });
      const before = Date.now();
      for (const question of ["first question", "second question"]) {
        const reply = await other.chat.completions.create({
          model: "fast-mini",
          messages: [
            { role: "system", content: longPolicy },
            { role: "user", content: question },
          ],
        });
        expect(reply.usage?.prompt_tokens).toBeGreaterThan(1024);
        expect(reply.usage?.prompt_tokens_details?.cached_tokens ?? 0).toBe(0);
      }
      const second = uncached.calls[1]!;
      expect(second.usd).toBe(
        usdOf(DEFAULT_PRICES["fast-mini"]!, second.promptTokens, 0, second.completionTokens),
      );
      expect(second.at).toBeGreaterThanOrEqual(uncached.calls[0]!.at);
      expect(uncached.calls[0]!.at).toBeGreaterThanOrEqual(before);
    } finally {
      await server.close();
    }
  });

  it("a different first message shares no prefix", () => {
    const cache = new PromptPrefixCache();
    const a = Array.from({ length: 1500 }, (_, index) => index);
    const b = [99_999, ...a.slice(1)];
    expect(cache.lookup("m", a)).toBe(0);
    expect(cache.lookup("m", b)).toBe(0);
    expect(cache.lookup("m", [...a, 1, 2, 3])).toBe(1408);
  });

  it("grades an answer correct only when its facts were in the prompt", async () => {
    const without = await client.chat.completions.create({
      model: "fast-mini",
      messages: [{ role: "user", content: "[[q:faq-wifi]] What is the wifi password?" }],
    });
    expect(verdictOf(without.choices[0]?.message.content ?? "")).toEqual({
      key: "faq-wifi",
      verdict: "wrong",
    });
    const withFact = await client.chat.completions.create({
      model: "fast-mini",
      messages: [
        { role: "system", content: "The guest wifi password is WIFI-4417." },
        { role: "user", content: "[[q:faq-wifi]] What is the wifi password?" },
      ],
    });
    expect(verdictOf(withFact.choices[0]?.message.content ?? "")?.verdict).toBe("correct");
    expect(grading.calls.map((call) => call.verdict)).toEqual(["wrong", "correct"]);
  });

  it("a hard question calls its tools first and needs a strong model or a plan", async () => {
    const user = { role: "user" as const, content: "[[q:hard-1]] Analyse order 1042." };
    const first = await client.chat.completions.create({ model: "fast-mini", messages: [user], tools });
    const call = first.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" && call.function.name).toBe("order_lookup");
    const afterTool = [
      user,
      { role: "assistant" as const, content: null, tool_calls: first.choices[0]!.message.tool_calls! },
      { role: "tool" as const, tool_call_id: call!.id, content: "order ORD-1042 shipped" },
    ];
    const fast = await client.chat.completions.create({ model: "fast-mini", messages: afterTool, tools });
    expect(verdictOf(fast.choices[0]?.message.content ?? "")?.verdict).toBe("wrong");
    const strong = await client.chat.completions.create({
      model: "strong-large",
      messages: afterTool,
      tools,
    });
    expect(verdictOf(strong.choices[0]?.message.content ?? "")?.verdict).toBe("correct");
    const planned = await client.chat.completions.create({
      model: "fast-mini",
      messages: [{ role: "system", content: "Follow this plan:\n1. look up" }, ...afterTool],
      tools,
    });
    expect(verdictOf(planned.choices[0]?.message.content ?? "")?.verdict).toBe("correct");
  });

  it("delegates, answers the subtask as the specialist, and needs its report", async () => {
    const user = { role: "user" as const, content: "[[q:deleg-1]] Research this." };
    const first = await client.chat.completions.create({ model: "strong-large", messages: [user], tools });
    const call = first.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" && call.function.name).toBe("delegate");
    const task =
      call?.type === "function" ? (JSON.parse(call.function.arguments) as { task: string }).task : "";
    const sub = await client.chat.completions.create({
      model: "fast-mini",
      messages: [{ role: "user", content: task }],
    });
    const report = sub.choices[0]?.message.content ?? "";
    expect(report).toContain("Specialist report for deleg-1");
    const done = await client.chat.completions.create({
      model: "strong-large",
      messages: [
        user,
        { role: "assistant", content: null, tool_calls: first.choices[0]!.message.tool_calls! },
        { role: "tool", tool_call_id: call!.id, content: report },
      ],
      tools,
    });
    expect(verdictOf(done.choices[0]?.message.content ?? "")?.verdict).toBe("correct");
    expect(grading.calls.map((entry) => entry.kind)).toEqual(["delegate", "subtask", "answer"]);
  });

  it("summarizes keeping every sentence with a fact code, and plans in JSON", async () => {
    const summary = await client.chat.completions.create({
      model: "fast-mini",
      messages: [
        { role: "system", content: "You maintain the running summary of a conversation." },
        {
          role: "user",
          content: "New turns:\nuser: Hi there.\nuser: My locker code is LOCKER-5521. Thanks!",
        },
      ],
    });
    expect(summary.choices[0]?.message.content).toContain("LOCKER-5521");
    expect(summary.choices[0]?.message.content).not.toContain("Hi there");
    const plan = await client.chat.completions.create({
      model: "fast-mini",
      messages: [
        { role: "system", content: "Break the user's request into at most 8 short steps" },
        { role: "user", content: "[[q:hard-1]] do it" },
      ],
    });
    expect(JSON.parse(plan.choices[0]?.message.content ?? "").steps.length).toBeGreaterThan(0);
  });

  it("bills embeddings with the real tokenizer", async () => {
    await client.embeddings.create({ model: "embed-small", input: ["hello world", "second text"] });
    const bill = embeddingBill(fake.requests);
    expect(bill.calls).toBe(1);
    expect(bill.tokens).toBe(encode("hello world").length + encode("second text").length);
    expect(bill.usd).toBeGreaterThan(0);
  });
});
