import { type ChatMessage, ModelChatRequest, RequestMeta } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { needsPlan, parsePlan, planInstruction, planRequest } from "./planner.js";

const meta = RequestMeta.parse({ tenant: "acme", requestId: "r1", deadline: Date.now() + 60_000 });
const multiPart: ChatMessage[] = [
  { role: "user", content: "Add 17 and 25. Then explain it. Finally, check the result." },
];

describe("when a run is planned", () => {
  it("skips a short single request and plans a multi-part one, saying why", () => {
    expect(needsPlan([{ role: "user", content: "hi there" }])).toEqual({
      needed: false,
      reason: "simple request: planning skipped",
    });
    const decision = needsPlan(multiPart);
    expect(decision.needed).toBe(true);
    expect(decision.reason).toBe("multi-part request (3 sentences, 58 characters)");
  });

  it("plans one long sentence, and counts newlines as sentence breaks", () => {
    expect(needsPlan([{ role: "user", content: `find ${"very ".repeat(30)}old files` }]).needed).toBe(true);
    expect(needsPlan([{ role: "user", content: "list the files\nthen sort them" }])).toMatchObject({
      needed: true,
      reason: expect.stringMatching(/^multi-part request \(2 sentences/),
    });
  });

  it("judges the last user message only, not earlier turns or the system prompt", () => {
    const input: ChatMessage[] = [
      { role: "system", content: "Be careful. Be precise. Be brief. Always." },
      { role: "user", content: "First do this. Then that. And finally the other thing." },
      { role: "assistant", content: "Done. Anything else?" },
      { role: "user", content: "thanks" },
    ];
    expect(needsPlan(input).needed).toBe(false);
    expect(needsPlan(input.slice(0, 2)).needed).toBe(true);
  });
});

describe("the plan request", () => {
  it("asks for JSON steps, deterministically, routed as task plan, with the tools named", () => {
    const request = planRequest(meta, multiPart, ["calculator", "web_search"]);
    expect(ModelChatRequest.safeParse(request).success).toBe(true);
    expect(request).toMatchObject({
      meta,
      task: "plan",
      temperature: 0,
      maxTokens: 400,
      responseFormat: { type: "json_object" },
    });
    // no explicit tier or model: the route chooses it
    expect(request.tier).toBeUndefined();
    expect(request.model).toBeUndefined();
    const [system, ...rest] = request.messages;
    expect(system?.role).toBe("system");
    expect(system?.content).toContain("at most 8 short steps");
    expect(system?.content).toContain("these tools: calculator, web_search.");
    expect(system?.content).toContain('{"steps": ["..."]}');
    expect(rest).toEqual(multiPart);
  });

  it("says none when the agent has no tools", () => {
    expect(planRequest(meta, multiPart, []).messages[0]?.content).toContain("these tools: none.");
  });
});

describe("reading the planner's answer", () => {
  it("accepts one to eight non-empty steps", () => {
    expect(parsePlan('{"steps": ["add the numbers", "explain"]}')).toEqual({
      plan: { steps: ["add the numbers", "explain"] },
    });
    const eight = Array.from({ length: 8 }, (_, index) => `step ${index}`);
    expect(parsePlan(JSON.stringify({ steps: eight }))).toEqual({ plan: { steps: eight } });
  });

  it("drops an answer that is not JSON", () => {
    for (const raw of ["", "1. add\n2. explain", '{"steps": ["add"'])
      expect(parsePlan(raw)).toEqual({
        plan: null,
        reason: "planner answered with invalid JSON: executing without a plan",
      });
  });

  it("drops a plan that fails validation", () => {
    const invalid = [
      "{}",
      '{"steps": []}',
      '{"steps": [""]}',
      '{"steps": "add, then explain"}',
      JSON.stringify({ steps: Array.from({ length: 9 }, (_, index) => `step ${index}`) }),
      JSON.stringify({ steps: ["x".repeat(501)] }),
      "null",
    ];
    for (const raw of invalid)
      expect(parsePlan(raw)).toEqual({
        plan: null,
        reason: "planner's plan failed validation: executing without a plan",
      });
  });
});

describe("the executor's instruction", () => {
  it("numbers the recorded plan's steps in a system message", () => {
    expect(planInstruction({ steps: ["add 17 and 25", "explain the sum"] })).toEqual({
      role: "system",
      content: "Follow this plan:\n1. add 17 and 25\n2. explain the sum",
    });
  });

  it("gives none when no plan was recorded or the record is not a valid plan", () => {
    expect(planInstruction(null)).toBeUndefined();
    expect(planInstruction(undefined)).toBeUndefined();
    expect(planInstruction({ steps: [] })).toBeUndefined();
    expect(planInstruction({ steps: "one" })).toBeUndefined();
  });
});
