import { ModelsSection } from "@agent-runtime/config";
import { type ModelChatRequest, RuntimeError } from "@agent-runtime/contracts";
import { describe, expect, it } from "vitest";
import { classifierRequest, parseVerdict, wantsClassifier } from "./classifier.js";
import { complexityFromVerdict, estimateComplexity, pickVariant, routeRequest } from "./router.js";

const models = ModelsSection.parse({
  providers: { p: { baseUrl: "http://127.0.0.1:1/v1" } },
  models: { small: { provider: "p" }, large: { provider: "p" }, mini: { provider: "p" } },
  tiers: { fast: ["small", "large"], strong: ["large"], tiny: ["mini"], deep: ["large"] },
  routes: [
    { name: "support-agent", when: { agent: ["support"] }, tier: "tiny" },
    { name: "very-hard-plans", when: { task: ["plan"], minComplexity: 0.5 }, tier: "deep" },
  ],
});

function request(content: string, extra: Partial<ModelChatRequest> = {}): ModelChatRequest {
  return {
    meta: { v: 1, tenant: "t", requestId: "r", deadline: Date.now() + 1000 },
    messages: [{ role: "user", content }],
    ...extra,
  };
}

const HARD =
  "Analyze the trade-offs of this architecture step by step, compare event sourcing with CRUD, and design a migration strategy. Explain why each decision holds.";

describe("complexity heuristic", () => {
  it("scores a look-up low and a reasoning task high", () => {
    expect(estimateComplexity(request("What time is it in Paris?"))).toBeLessThan(0.2);
    expect(estimateComplexity(request(HARD))).toBeGreaterThanOrEqual(0.45);
    expect(estimateComplexity(request("fix this: ```const a = 1```"))).toBeGreaterThan(
      estimateComplexity(request("fix this")),
    );
  });
});

describe("routeRequest", () => {
  it("lets an explicit model or tier win and rejects unknown names", () => {
    expect(routeRequest(models, request(HARD, { model: "mini" }))).toMatchObject({
      chain: ["mini"],
      reason: "explicit model mini",
    });
    expect(routeRequest(models, request(HARD, { tier: "fast" }))).toMatchObject({
      tier: "fast",
      chain: ["small", "large"],
      byComplexity: false,
    });
    expect(() => routeRequest(models, request("x", { model: "nope" }))).toThrow(RuntimeError);
    expect(() => routeRequest(models, request("x", { tier: "nope" }))).toThrow(/unknown tier "nope"/);
  });

  it("applies rules in order, by agent and by task with a complexity bound", () => {
    const support = routeRequest(models, request(HARD, { meta: { ...request("").meta, agent: "support" } }));
    expect(support).toMatchObject({ tier: "tiny", reason: "route support-agent" });
    const easyPlan = routeRequest(models, request("plan a picnic", { task: "plan" }));
    expect(easyPlan.tier).toBe("fast");
    expect(easyPlan.byComplexity).toBe(true);
    const hardPlan = routeRequest(
      models,
      request(`${HARD} Then prove the algorithm complexity and optimize it.`, { task: "plan" }),
    );
    expect(hardPlan.tier).toBe("deep");
    expect(hardPlan.reason).toMatch(/^route very-hard-plans \(complexity 0\.\d+\)$/);
  });

  it("routes by opt-in, routine task kind and complexity, recording why", () => {
    expect(routeRequest(models, request("hi", { deepAnalysis: true }))).toMatchObject({
      tier: "strong",
      reason: "caller opted in to deep analysis",
    });
    expect(routeRequest(models, request(HARD, { task: "summarize" }))).toMatchObject({
      tier: "fast",
      reason: "task summarize is routine",
      byComplexity: false,
    });
    const simple = routeRequest(models, request("What time is it in Paris?"));
    expect(simple).toMatchObject({ tier: "fast", byComplexity: true });
    expect(simple.reason).toMatch(/^complexity 0(\.\d+)? < 0\.45$/);
    const hard = routeRequest(models, request(HARD));
    expect(hard.tier).toBe("strong");
    expect(hard.reason).toMatch(/>= 0\.45$/);
  });

  it("honours a configured complexity threshold", () => {
    const strict = { ...models, complexityThreshold: 0.95 };
    expect(routeRequest(strict, request(HARD)).tier).toBe("fast");
  });

  it("moves the score to the classifier's side of the threshold", () => {
    expect(complexityFromVerdict({ label: "complex", heuristic: 0.3 }, 0.45)).toBe(0.45);
    expect(complexityFromVerdict({ label: "complex", heuristic: 0.8 }, 0.45)).toBe(0.8);
    expect(complexityFromVerdict({ label: "simple", heuristic: 0.5 }, 0.45)).toBe(0.44);
    const routed = routeRequest(models, request("hmm"), { label: "complex", heuristic: 0.3 });
    expect(routed.tier).toBe("strong");
    expect(routed.reason).toMatch(/classifier said complex \(heuristic 0\.3\)/);
  });
});

describe("A/B variants", () => {
  it("splits close to the weights and is sticky per key", () => {
    const variants = [
      { name: "a", weight: 1 },
      { name: "b", weight: 3 },
    ];
    let b = 0;
    for (let i = 0; i < 10_000; i++) if (pickVariant(variants, `user-${i}`).name === "b") b++;
    expect(b / 10_000).toBeGreaterThan(0.73);
    expect(b / 10_000).toBeLessThan(0.77);
    const first = pickVariant(variants, "sticky-user").name;
    for (let i = 0; i < 20; i++) expect(pickVariant(variants, "sticky-user").name).toBe(first);
  });

  const withVariants = (variants: unknown[], extraRoutes: unknown[] = []) =>
    ModelsSection.parse({
      ...models,
      routes: [
        { name: "agent:desk", when: { agent: ["desk"] }, variants, stickyBy: "user" },
        ...extraRoutes,
        ...models.routes,
      ],
    });
  const asUser = (userId: string, extra: Partial<ModelChatRequest> = {}) =>
    request("hello", {
      ...extra,
      meta: {
        v: 1,
        tenant: "t",
        requestId: `r-${userId}`,
        userId,
        agent: "desk",
        deadline: Date.now() + 1000,
      },
    });

  it("a variant naming a model sends that user's calls to the model and labels them", () => {
    const section = withVariants([
      { name: "mini", weight: 1, model: "mini" },
      { name: "large", weight: 1, model: "large" },
    ]);
    const seen = new Set<string>();
    for (let user = 0; user < 40; user++) {
      const routed = routeRequest(section, asUser(`u${user}`));
      expect(routed.chain).toEqual([routed.variant]);
      expect(routed.reason).toMatch(/^route agent:desk: variant (mini|large) \(sticky by user\)/);
      seen.add(routed.variant!);
      // the same user again, another request: the same variant
      expect(routeRequest(section, asUser(`u${user}`)).variant).toBe(routed.variant);
    }
    expect(seen).toEqual(new Set(["mini", "large"]));
    const unknown = withVariants([
      { name: "a", weight: 1, model: "nope" },
      { name: "b", weight: 1, model: "nope" },
    ]);
    expect(() => routeRequest(unknown, asUser("u1"))).toThrow(RuntimeError);
  });

  it("a prompt-only variant labels the call and the following rules route it, explicit tiers too", () => {
    const section = withVariants(
      [
        { name: "formal", weight: 1 },
        { name: "casual", weight: 1 },
      ],
      [{ name: "desk-fast", when: { agent: ["desk"] }, tier: "tiny" }],
    );
    const routed = routeRequest(section, asUser("u1"));
    expect(routed.tier).toBe("tiny");
    expect(["formal", "casual"]).toContain(routed.variant);
    expect(routed.reason).toMatch(/^route agent:desk: variant \w+ \(sticky by user\); route desk-fast$/);
    const pinned = routeRequest(section, asUser("u1", { tier: "strong" }));
    expect(pinned).toMatchObject({ tier: "strong", variant: routed.variant, reason: "explicit tier strong" });
    // another agent is not labelled
    expect(routeRequest(section, request("hello", { tier: "strong" })).variant).toBeUndefined();
  });
});

describe("complexity classifier", () => {
  const classifier = {
    tier: "fast",
    minComplexity: 0.2,
    maxComplexity: 0.6,
    timeoutMs: 500,
    maxInputChars: 10,
  };

  it("is asked only when complexity decided the route and the score is in its band", () => {
    expect(wantsClassifier(classifier, { byComplexity: true, complexity: 0.3 })).toBe(true);
    expect(wantsClassifier(classifier, { byComplexity: true, complexity: 0.1 })).toBe(false);
    expect(wantsClassifier(classifier, { byComplexity: false, complexity: 0.3 })).toBe(false);
    expect(wantsClassifier(undefined, { byComplexity: true, complexity: 0.3 })).toBe(false);
  });

  it("builds a short deterministic call and reads its verdict", () => {
    const now = Date.now();
    const asked = classifierRequest(classifier, request("0123456789abcdef"), now);
    expect(asked).toMatchObject({ tier: "fast", task: "classify", temperature: 0, maxTokens: 3 });
    expect(asked.meta.requestId).toBe("r:classify");
    expect(asked.meta.deadline).toBeLessThanOrEqual(now + 500);
    expect(asked.messages[1]).toEqual({ role: "user", content: "0123456789" });
    const reply = (content: string) =>
      ({ message: { role: "assistant", content } }) as Parameters<typeof parseVerdict>[0];
    expect(parseVerdict(reply("COMPLEX"), 0.3)).toEqual({ label: "complex", heuristic: 0.3 });
    expect(parseVerdict(reply(" simple."), 0.3)?.label).toBe("simple");
    expect(parseVerdict(reply("I think it is hard"), 0.3)).toBeUndefined();
  });
});
