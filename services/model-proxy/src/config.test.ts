import { ConfigError } from "@agent-runtime/config";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { writeConfigFile } from "./test-support.js";

describe("loadConfig", () => {
  it("builds one provider and the fast/strong tiers from env alone", () => {
    const config = loadConfig({
      OPENAI_BASE_URL: "http://127.0.0.1:9999/v1",
      OPENAI_API_KEY: "sk-test",
      MODEL_FAST: "small-1",
      MODEL_STRONG: "large-1",
    });
    expect(config.offline).toBe(false);
    expect(config.models.providers.default?.baseUrl).toBe("http://127.0.0.1:9999/v1");
    expect(config.models.tiers).toEqual({ fast: ["small-1"], strong: ["large-1"] });
    expect(config.models.embeddingModel).toBe("text-embedding-3-small");
    expect(config.maxInFlight).toBe(256);
  });

  it("keeps a quarter of every bound and a fifth of every rate window for interactive work by default", () => {
    expect(loadConfig({}).priority).toEqual({ interactiveReserve: 0.25, batchRateShare: 0.8 });
    expect(loadConfig({ INTERACTIVE_RESERVE: "0", BATCH_RATE_SHARE: "1" }).priority).toEqual({
      interactiveReserve: 0,
      batchRateShare: 1,
    });
    expect(() => loadConfig({ INTERACTIVE_RESERVE: "1.5" })).toThrow(ConfigError);
  });

  it("falls back to the offline dev model when no provider is configured", () => {
    const config = loadConfig({});
    expect(config.offline).toBe(true);
    expect(Object.keys(config.models.providers)).toEqual(["offline"]);
    expect(config.models.tiers.fast).toEqual(["gpt-4o-mini"]);
  });

  it("takes an empty OPENAI_BASE_URL (docker compose with nothing set) as no provider", () => {
    const config = loadConfig({ OPENAI_BASE_URL: "", OPENAI_API_KEY: "", MODEL_FAST: "" });
    expect(config.offline).toBe(true);
    expect(config.models.tiers.fast).toEqual(["gpt-4o-mini"]);
  });

  it("prices well-known models from the built-in table and lists the unpriced ones", () => {
    const env = loadConfig({ OPENAI_API_KEY: "sk-test", MODEL_STRONG: "my-local-model" });
    expect(env.models.models["gpt-4o-mini"]?.pricing).toMatchObject({ input: 0.15, output: 0.6 });
    expect(env.models.models["text-embedding-3-small"]?.pricing).toMatchObject({ input: 0.02 });
    expect(env.unpricedModels).toEqual(["my-local-model"]);
    const path = writeConfigFile({
      providers: { a: { baseUrl: "http://127.0.0.1:1/v1" } },
      models: {
        mini: { provider: "a", id: "gpt-4o-mini-2024-07-18" },
        own: { provider: "a", id: "gpt-4o", pricing: { input: 9, output: 9 } },
        listed: { provider: "a", id: "llama-3.1-8b" },
      },
      prices: { "llama-3.1-8b": { input: 0.05, output: 0.08 } },
      tiers: { fast: ["mini"] },
    });
    const file = loadConfig({ AGENT_CONFIG: path });
    expect(file.models.models.mini?.pricing?.input).toBe(0.15);
    expect(file.models.models.own?.pricing?.input).toBe(9);
    expect(file.models.models.listed?.pricing).toEqual({ input: 0.05, output: 0.08 });
    expect(file.unpricedModels).toEqual([]);
    expect(loadConfig({}).unpricedModels).toEqual([]);
  });

  it("reads a config file and keeps its tiers, routes and classifier", () => {
    const path = writeConfigFile({
      providers: { a: { baseUrl: "http://127.0.0.1:1/v1", apiKeyEnv: "A_KEY", rpm: 100 } },
      models: { m1: { provider: "a", pricing: { input: 1, output: 2 } } },
      tiers: { fast: ["m1"], strong: ["m1"] },
      complexityThreshold: 0.6,
      classifier: { tier: "fast" },
    });
    const config = loadConfig({ AGENT_CONFIG: path, A_KEY: "secret" });
    expect(config.models.providers.a?.rpm).toBe(100);
    expect(config.models.complexityThreshold).toBe(0.6);
    expect(config.models.classifier).toMatchObject({ tier: "fast", minComplexity: 0.2, maxComplexity: 0.6 });
  });

  it("fails on a bad file with a message naming each bad path", () => {
    const path = writeConfigFile({
      providers: { p: { baseUrl: "not a url", rpm: -1 } },
      models: { m: { provider: "p" } },
    });
    expect(() => loadConfig({ AGENT_CONFIG: path })).toThrow(ConfigError);
    expect(() => loadConfig({ AGENT_CONFIG: path })).toThrow(/providers\.p\.baseUrl/);
    expect(() => loadConfig({ AGENT_CONFIG: path })).toThrow(/providers\.p\.rpm/);
    expect(() => loadConfig({ AGENT_CONFIG: path })).toThrow(
      new RegExp(path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")),
    );
  });

  it("fails on references to undeclared providers, models and tiers", () => {
    const path = writeConfigFile({
      providers: { p: { baseUrl: "http://127.0.0.1:1/v1" } },
      models: { m: { provider: "p" }, orphan: { provider: "ghost" } },
      tiers: { fast: ["m", "missing"] },
      routes: [{ name: "r", tier: "nowhere" }],
      classifier: { tier: "absent", minComplexity: 0.9, maxComplexity: 0.1 },
    });
    let message = "";
    try {
      loadConfig({ AGENT_CONFIG: path });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toContain('models.orphan.provider: unknown provider "ghost"');
    expect(message).toContain('tiers.fast[1]: unknown model "missing"');
    expect(message).toContain('routes[0].tier: unknown tier "nowhere"');
    expect(message).toContain('classifier.tier: unknown tier "absent"');
    expect(message).toContain("classifier.minComplexity");
  });

  it("names a missing file and unset ${ENV} references", () => {
    expect(() => loadConfig({ AGENT_CONFIG: "/nonexistent/agent.yaml" })).toThrow(
      /cannot read config file \/nonexistent\/agent\.yaml/,
    );
    const path = writeConfigFile({ providers: { p: { baseUrl: "${PROVIDER_URL}" } } });
    expect(() => loadConfig({ AGENT_CONFIG: path })).toThrow(/PROVIDER_URL/);
  });

  it("rejects bad service env with the variable's name", () => {
    expect(() => loadConfig({ MAX_IN_FLIGHT: "lots" })).toThrow(/MAX_IN_FLIGHT/);
  });
});
