/**
 * The runtime configurations a replay compares: naive (every saving of the runtime off) and as
 * configured, and configured with one mechanism off at a time (to attribute each saving).
 */
import { DEFAULT_PRICES } from "@agent-runtime/testkit";

export const MECHANISMS = [
  "responseCache",
  "embeddingCache",
  "toolCache",
  "tierRouting",
  "contextBudget",
  "summaries",
  "promptCache",
] as const;
export type Mechanism = (typeof MECHANISMS)[number];

/** What switching a mechanism off means in a replay. */
export const MECHANISM_LABELS: Record<Mechanism, string> = {
  responseCache: "response cache (RESPONSE_CACHE_TTL_SECONDS=0)",
  embeddingCache: "embedding cache (EMBEDDING_CACHE_TTL_SECONDS=0)",
  toolCache: "tool result cache (cacheTtlSeconds: 0 on the read-only tools)",
  tierRouting: "tier routing (every agent pinned to the strong tier)",
  contextBudget: "context budget (whole thread history every turn)",
  summaries: "running summaries (never summarised)",
  promptCache:
    "provider prompt caching through the stable prefix (the provider bills every prompt token in full)",
};

export interface RunSettings {
  name: string;
  off: ReadonlySet<Mechanism>;
  /** Send the batch CloudEvents beside the interactive traffic (default true). */
  batch?: boolean;
}

/**
 * Everything the runtime does to save off. The provider still discounts a repeated prompt prefix:
 * a naive runtime appends each turn to the same history, and providers cache that on their own,
 * so naive is not charged as if it had none (the conservative baseline).
 */
export function naive(): RunSettings {
  return { name: "naive", off: new Set(MECHANISMS.filter((mechanism) => mechanism !== "promptCache")) };
}

export function configured(without?: Mechanism): RunSettings {
  return { name: without ? `without-${without}` : "configured", off: new Set(without ? [without] : []) };
}

/** As configured, with no batch work: the interactive latency baseline. */
export function configuredWithoutBatch(): RunSettings {
  return { name: "configured-no-batch", off: new Set(), batch: false };
}

/** The AGENT_CONFIG file and extra environment of one run. */
export function runtimeConfig(
  settings: RunSettings,
  toolUrl: string,
  knowledgeBase: string,
  providerUrl: string,
): { config: unknown; env: NodeJS.ProcessEnv } {
  const off = settings.off;
  const routed = !off.has("tierRouting");
  const tier = routed ? {} : { tier: "strong" };
  const memory = off.has("contextBudget") ? { contextBudgetTokens: 500_000 } : { contextBudgetTokens: 3000 };
  const toolCache = off.has("toolCache") ? 0 : 600;
  const models: Record<string, unknown> = {};
  for (const [name, price] of Object.entries(DEFAULT_PRICES)) {
    models[name] = {
      provider: "grading",
      pricing: { input: price.input, output: price.output, cachedInput: price.cachedInput },
      ...(price.grade === "embedding" ? { capabilities: ["embeddings"] } : {}),
    };
  }
  const webhook = (path: string, description: string, properties: Record<string, unknown>) => ({
    description,
    url: `${toolUrl}${path}`,
    method: "POST",
    parameters: { type: "object", properties, required: Object.keys(properties) },
    allowPrivateNetwork: true,
  });
  const config = {
    providers: {
      grading: { baseUrl: providerUrl, apiKeyEnv: "OPENAI_API_KEY", maxConcurrency: 64 },
    },
    models,
    tiers: { fast: ["fast-mini"], strong: ["strong-large"] },
    embeddingModel: "embed-small",
    defaultTier: routed ? "fast" : "strong",
    routes: routed
      ? [
          { name: "routine", when: { task: ["plan", "summarize", "classify", "route"] }, tier: "fast" },
          {
            name: "front-desk",
            when: { agent: ["support", "triage", "ops", "digest", "researcher", "companion"] },
            tier: "fast",
          },
        ]
      : [{ name: "everything-strong", when: {}, tier: "strong" }],
    memory: {
      // full history: memory reads this many unsummarised messages of a thread
      hotTurns: off.has("contextBudget") ? 1000 : 50,
      summarizeAfterTokens: off.has("summaries") ? 100_000_000 : 1200,
      keepRecentTurns: 6,
      embeddingDimensions: 64,
    },
    tools: {
      webhooks: {
        order_lookup: {
          ...webhook("/order", "Looks up an order's status and tracking code.", {
            order: { type: "string" },
          }),
          sideEffects: false,
          personal: false,
          cacheTtlSeconds: toolCache,
        },
        stock_lookup: {
          ...webhook("/stock", "Looks up the stock of a SKU.", { sku: { type: "string" } }),
          sideEffects: false,
          personal: false,
          cacheTtlSeconds: toolCache,
        },
        create_ticket: {
          ...webhook("/ticket", "Opens a callback ticket (acts on the world).", {
            ref: { type: "string" },
            summary: { type: "string" },
          }),
          sideEffects: true,
        },
      },
    },
    agents: {
      support: {
        description: "Shop support",
        systemPrompt: knowledgeBase,
        tools: ["order_lookup"],
        memory,
        ...tier,
      },
      triage: {
        description: "Classifies, extracts and routes messages",
        systemPrompt:
          "You classify, extract and route customer messages: answer with the label, reference or team.",
        memory,
        ...tier,
      },
      analyst: {
        description: "Multi-step analysis with lookups",
        systemPrompt: "You analyse orders and stock with your tools and a researcher, then recommend.",
        tools: ["order_lookup", "stock_lookup"],
        delegates: ["researcher"],
        planner: true,
        maxSteps: 8,
        memory,
        ...tier,
      },
      researcher: {
        description: "Checks details",
        systemPrompt: "You check details and report.",
        memory,
        ...tier,
      },
      ops: {
        description: "Opens tickets",
        systemPrompt: "You open tickets for customers.",
        tools: ["create_ticket"],
        memory,
        ...tier,
      },
      digest: {
        description: "Summarizes ticket batches",
        systemPrompt: "You summarize batches of tickets, naming each ticket's code.",
        triggers: ["replay.tickets.batch"],
        memory,
        ...tier,
      },
      companion: {
        description: "A personal assistant with memory",
        systemPrompt:
          "You are a friendly personal assistant. Use what the user told you and their documents.",
        memory: { ...memory, retrieval: true },
        ...tier,
      },
    },
  };
  const env: NodeJS.ProcessEnv = {
    RESPONSE_CACHE_TTL_SECONDS: off.has("responseCache") ? "0" : "3600",
    EMBEDDING_CACHE_TTL_SECONDS: off.has("embeddingCache") ? "0" : String(7 * 24 * 3600),
  };
  return { config, env };
}
