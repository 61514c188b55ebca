import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  contentText,
  createGradingProvider,
  DEFAULT_PRICES,
  startFakeOpenAI,
  verdictOf,
} from "@agent-runtime/testkit";
import { expect, it } from "vitest";
import { startStack } from "../support/stack.js";

const FORMAL = "You are the formal help desk. Answer in full sentences.";
const CASUAL = "You are the casual help desk.";

interface StatsItem {
  agent: string;
  variant?: string;
  route?: string;
  tier?: string;
  calls: number;
  prompt_tokens: number;
  cost_usd: number;
  errors: number;
}

/**
 * An agent with two weighted variants (a fast model with one prompt, a strong model with another):
 * each user stays in one variant, the prompt and the model of a call are its variant's, and
 * `/v1/stats` gives cost per variant and per route, so an A/B test compares cost with the
 * correctness the grading provider saw.
 */
it("A/B variants of an agent: per-variant prompt and model, cost per variant and route in /v1/stats, correctness compared", async () => {
  const questions = Array.from({ length: 24 }, (_, index) => ({
    key: `ab-${index}`,
    facts: [],
    hard: true,
    answer: "Considered answer.",
  }));
  const grading = createGradingProvider({ questions });
  const fake = await startFakeOpenAI({ defaultHandler: grading.handler, embeddingDimensions: 64 });
  const models: Record<string, unknown> = {};
  for (const [name, price] of Object.entries(DEFAULT_PRICES))
    models[name] = {
      provider: "grading",
      pricing: { input: price.input, output: price.output, cachedInput: price.cachedInput },
      ...(price.grade === "embedding" ? { capabilities: ["embeddings"] } : {}),
    };
  const config = {
    providers: { grading: { baseUrl: fake.url, apiKeyEnv: "OPENAI_API_KEY" } },
    models,
    tiers: { fast: ["fast-mini"], strong: ["strong-large"] },
    embeddingModel: "embed-small",
    agents: {
      desk: {
        systemPrompt: "unused: every user is in a variant",
        variants: [
          { name: "mini", weight: 1, model: "fast-mini", systemPrompt: CASUAL },
          { name: "large", weight: 1, model: "strong-large", systemPrompt: FORMAL },
        ],
        stickyBy: "user",
      },
    },
  };
  const configPath = join(tmpdir(), `variants-${process.pid}-${Date.now()}.json`);
  writeFileSync(configPath, JSON.stringify(config));
  const key = "sk-variants-test";
  const stack = await startStack({
    bootstrapApiKey: key,
    openaiBaseUrl: fake.url,
    env: {
      AGENT_CONFIG: configPath,
      MODEL_FAST: "fast-mini",
      MODEL_STRONG: "strong-large",
      MODEL_EMBED: "embed-small",
    },
  });
  try {
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const answers = new Map<string, string>();
    await Promise.all(
      questions.map(async (question, index) => {
        const response = await fetch(`${stack.url}/v1/chat/completions`, {
          method: "POST",
          headers,
          body: JSON.stringify({
            model: "desk",
            user: `user-${index % 12}`,
            messages: [{ role: "user", content: `[[q:${question.key}]] Which plan suits me?` }],
          }),
        });
        expect(response.status).toBe(200);
        const body = (await response.json()) as { choices: Array<{ message: { content: string } }> };
        answers.set(`user-${index % 12}:${question.key}`, body.choices[0]!.message.content);
      }),
    );

    // each call's prompt and model belong to one variant, and a user's calls to one variant
    const variantOfUser = new Map<string, string>();
    const chats = fake.requests.filter((request) => request.path === "/v1/chat/completions");
    expect(chats).toHaveLength(questions.length);
    for (const request of chats) {
      const body = request.body as { model: string; messages: Array<{ role: string; content: unknown }> };
      const system = contentText(
        body.messages.find((message) => message.role === "system")?.content as never,
      );
      expect(body.model === "fast-mini" ? CASUAL : FORMAL).toBe(system);
    }
    const perVariant = { mini: { correct: 0, asked: 0 }, large: { correct: 0, asked: 0 } };
    for (const [asked, answer] of answers) {
      const [user] = asked.split(":");
      const call = grading.calls.find((entry) => entry.key === verdictOf(answer)?.key);
      const variant = call?.model === "fast-mini" ? "mini" : "large";
      expect(variantOfUser.get(user!) ?? variant).toBe(variant);
      variantOfUser.set(user!, variant);
      perVariant[variant].asked++;
      if (verdictOf(answer)?.verdict === "correct") perVariant[variant].correct++;
    }
    expect(perVariant.mini.asked).toBeGreaterThan(0);
    expect(perVariant.large.asked).toBeGreaterThan(0);
    // hard questions: the strong variant gets them right, the fast one (no plan) does not
    expect(perVariant.large.correct).toBe(perVariant.large.asked);
    expect(perVariant.mini.correct).toBe(0);

    // /v1/stats: cost per variant agrees with the provider's bill, and per route and tier
    let stats: { variants: StatsItem[]; routes: StatsItem[] } = { variants: [], routes: [] };
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      const response = await fetch(`${stack.url}/v1/stats?days=1`, { headers });
      stats = (await response.json()) as typeof stats;
      if (stats.variants.reduce((sum, item) => sum + item.calls, 0) === questions.length) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const billed = (model: string) =>
      grading.calls.filter((call) => call.model === model).reduce((sum, call) => sum + call.usd, 0);
    const variant = (name: string) =>
      stats.variants.find((item) => item.agent === "desk" && item.variant === name)!;
    expect(variant("mini").calls).toBe(perVariant.mini.asked);
    expect(variant("large").calls).toBe(perVariant.large.asked);
    expect(variant("mini").cost_usd).toBeCloseTo(billed("fast-mini"), 9);
    expect(variant("large").cost_usd).toBeCloseTo(billed("strong-large"), 9);
    expect(variant("large").cost_usd / variant("large").calls).toBeGreaterThan(
      (variant("mini").cost_usd / variant("mini").calls) * 10,
    );
    const routes = stats.routes.filter((item) => item.agent === "desk");
    expect(routes.reduce((sum, item) => sum + item.calls, 0)).toBe(questions.length);
    expect(new Set(routes.map((item) => item.tier))).toEqual(new Set(["explicit"]));
  } finally {
    await stack.stop();
    await fake.close();
  }
});
